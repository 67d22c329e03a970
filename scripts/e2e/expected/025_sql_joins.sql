-- Two small tables.
create table a (x int4, y text);
create table b (x int4, z text);
insert into a values (1, 'a1'), (2, 'a2'), (3, 'a3');
insert into b values (1, 'b1'), (1, 'b1b'), (3, 'b3'), (4, 'b4'), (null, 'bn');
-- Comma lists and CROSS JOIN: every pair.
select * from a, b order by a.x, b.x, z;
select a.y, b.z from a cross join b where a.x = b.x order by 1, 2;
select count(*) from a, b, a as a2;
-- JOIN ... ON and LEFT JOIN.
select * from a join b on a.x = b.x order by 1, 4;
select * from a inner join b on (a.x = b.x) order by 1, 4;
select * from a left join b on a.x = b.x order by 1, 4;
select * from a left outer join b on a.x = b.x and a.x > 1 order by 1, 4;
select a.* from a left join b on a.x = b.x where b.x is null;
select * from b left join a on a.x = b.x order by 2;
select * from a join b on a.x = b.x and b.z like '%b' order by 1;
-- Aliases, self joins, several joins, joins in parentheses.
select t1.x, t2.x as next from a t1 join a t2 on t2.x = t1.x + 1 order by 1;
select * from a t1 join a t2 on t1.x = t2.x + 1 join b on b.x = t2.x order by 1, 6;
select j.* from (a join b on a.x = b.x) as j order by 1, 4;
select a.x, c.relname from a, pg_catalog.pg_class as c where c.relname = 'a' and a.x < 3 order by 1;
-- Aggregates, GROUP BY, ORDER BY and LIMIT over joined rows.
select a.x, count(b.x) from a left join b on a.x = b.x group by 1 order by 1;
select a.y, count(*), max(b.z) from a join b on a.x = b.x group by a.y order by 2 desc, 1 limit 1;
select t1.x, count(t2.x) from a t1 left join a t2 on t1.x < t2.x group by 1 order by 1;
-- Subqueries in FROM, with column aliases, and LATERAL.
select * from (select 1 as q, 2) s;
select * from (select 1 as q, 2) s(w);
select s.* from (select x, count(*) from b group by x) s order by 1;
select * from a, (select 1 as one) s where s.one = a.x;
select o.n, a.y from a cross join lateral (select a.x * 10 as m) as o(n) where o.n > 10 order by 1;
select * from a, lateral (select b.z from b where b.x = a.x) s order by 1, 3;
select * from a left join lateral (select b.z from b where b.x = a.x) s on true order by 1, 3;
select a.x, s.c from a cross join lateral (select count(*) as c from b where b.x <= a.x) s order by 1;
-- Errors.
select x from a, b;
select x from a join b on y = z;
select a.x, b.q from a, b;
select c.x from a, b;
select a.x from a t;
select a.* from a t;
select * from a, a;
select * from a join b on q = 1;
select * from a join b on a.x;
select * from a join b on count(*) = 1;
select * from a, (select a.x) s;
select * from (select 1);
select * from (select 1) as s(a, b);
select j.x from (a join b on a.x = b.x) j;
select * from a join nosuch on true;
select * from pg_catalog.nosuch;
select * from nosuchschema.a;
-- The catalogs pgbench reads, qualified or not.
select c.oid, c.relname, n.nspname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.relname in ('pg_class', 'pg_inherits', 'pg_partitioned_table') order by 1;
select * from pg_catalog.pg_inherits;
select * from pg_partitioned_table;
select count(*) from pg_class c left join pg_inherits i on i.inhparent = c.oid where c.relname = 'a';
-- current_schemas, array_position and "char".
select current_schemas(true), current_schemas(false), pg_catalog.current_schemas(true) as qualified;
select pg_typeof(current_schemas(true)), array_position(current_schemas(true), 'public'), array_position(current_schemas(true), 'nosuch');
select pg_typeof(array_position(current_schemas(false), 'public')), array_position(current_schemas(true), null);
select 'ab'::"char", pg_typeof('x'::"char");
set search_path = pg_catalog;
select current_schemas(true), current_schemas(false);
set search_path = '$user', public;
select current_schemas(true), current_schemas(false);
reset search_path;
-- pgbench's start-up query: no rows without the table, one row with it.
select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1;
create table pgbench_accounts (aid int4 not null, bid int4, abalance int4, filler char(84));
select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1;
-- GROUP BY expressions over joined rows.
select a.x % 2 as parity, count(*) from a join b on a.x = b.x group by a.x % 2 order by 1;
select a.x + b.x, count(*) from a, b where b.x is not null group by 1 having count(*) > 1 order by 1;
select a.x % 2 + 1, count(*) from a group by a.x % 2 order by 1;
select a.y, count(*) from a group by a.x % 2;
select count(*) from a group by 1;
