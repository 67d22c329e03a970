create table items (id int4 not null, name text, qty int2, big int8, price float8, ok bool, code varchar(4));
insert into items values (1, 'apple', 3, 10000000000, 1.25, true, 'ab');
insert into items (id, name) values (2, 'pear'), (3, 'plum') returning id, name;
insert into items (name, id, qty) values ('fig', 4, '7');
select * from items order by id;
select id, name from items where qty is null order by id desc;
select count(*) from items;
select count(*), count(qty) from items where id > 1;
select name from items where id = 3 or price > 1 order by name limit 1;
select id from items order by id limit 2 offset 1;
update items set qty = qty + 1, name = name || '!' where id in (1, 4) returning id, name, qty;
delete from items where id = 2 returning *;
select id, name, qty from items order by 1;
begin;
insert into items (id, name) values (5, 'kiwi');
update items set name = 'gone' where id = 1;
select id, name from items order by id;
rollback;
select id, name from items order by id;
insert into items (id) values (null);
insert into items (id, code) values (6, 'toolong');
insert into items (id, nope) values (7, 1);
insert into items values (1, 2, 3, 4, 5, 6, 7, 8);
insert into items (id, qty) values (8, 'x');
insert into items (id, ok) values (9, 3);
select zzz_no_such_column from items;
select * from missing;
create table items (a int4);
create table if not exists items (a int4);
select count(*) from items where count(*) > 1;
select id, count(*) from items;
drop table missing;
drop table if exists missing;
begin;
select 1;
select * from nothing_here;
select 1;
rollback;
create table t2 (a int4, b text not null);
insert into t2 values (1, 'x'), (2, 'y');
drop table t2;
select * from t2;
drop table items;
drop table if exists nosuch.t;
create table d1 (a int4);
drop table d1, d1;
drop table a.b.c;
create table ch (c char(5), t timestamp, v varchar(3));
insert into ch values ('ab', '2024-02-29 13:45:01.5', 'x');
select c || '|' as c, t, v from ch;
insert into ch (c) values ('abcdefg');
insert into ch (c) values ('abc    ');
select c, length(v) is null as v_null from ch order by t;
truncate ch;
select count(*) from ch;
drop table ch;
create table ff (a int4) with (fillfactor = 5);
create table ff (a int4) with (foo = 1);
begin isolation level repeatable read read only;
commit and chain;
show transaction_isolation;
show transaction_read_only;
rollback;
begin read only;
select 1;
set transaction read write;
rollback;
create table t9 (a int4);
update t9 set a = 1, a = 2;
drop table t9;
create table d (id int4 not null, n int4 default 7, note text default 'x' || 'y', t timestamp default now(), b bool default (1 > 0));
insert into d (id) values (1);
insert into d values (2, default, default, '2020-01-01', false);
insert into d (id, n) select g, g * 10 from generate_series(3, 4) g;
update d set n = default where id = 3;
select id, n, note, t is not null as has_t, b from d order by id;
create table bad (a int default b);
create table bad (a int default 'x');
create table bad2 (a int4 default 'x'::text);
drop table d;
create table g (k int4, v int4, s text);
insert into g select x % 3, x, 'n' || x from generate_series(1, 10) x;
select k, count(*), sum(v), avg(v), min(s), max(v) from g group by k order by k;
select count(*), sum(v) from g where v > 100;
select k from g group by k having sum(v) > 15 order by k desc;
select sum(s) from g;
drop table g;
create table k (id int4 primary key, name text unique, v int4);
insert into k values (1, 'a', 10), (2, 'b', 20);
insert into k values (1, 'c', 30);
insert into k values (3, 'a', 30);
insert into k values (null, 'z', 1);
update k set id = 2 where id = 1;
update k set v = v + 1 where id = 1;
select * from k order by id;
create index on k (v);
create index k_v_idx2 on k (v);
create unique index k_v_uniq on k (v);
insert into k values (5, 'e', 11);
drop index k_v_uniq;
drop index k_pkey;
drop index if exists nope;
create table t2 (a int4, b int4);
insert into t2 values (1, 1), (1, 2), (null, 3);
alter table t2 add primary key (a);
delete from t2 where a is null;
alter table t2 add primary key (a);
delete from t2 where b = 2;
alter table t2 add primary key (a);
insert into t2 values (1, 5);
alter table t2 add constraint t2_b_key unique (b);
truncate k;
insert into k values (1, 'a', 1);
select * from k;
drop table k;
drop table t2;
create table acc (aid int4 primary key, bid int4, abalance int4);
insert into acc select g, (g - 1) / 100 + 1, 0 from generate_series(1, 1000) g;
update acc set abalance = abalance + -100 where aid = 345;
select aid, abalance from acc where aid = 345;
select count(*) from acc where aid > 990;
select count(*) from acc where aid >= 100 and aid < 200 and bid = 2;
select aid from acc where 5 > aid order by aid;
delete from acc where aid = 3;
select aid from acc where aid <= 5 order by aid;
drop table acc;
create table cp (id int4 primary key, name text, v int4 default 7, note varchar(5));
copy cp from stdin;
1	one	10	a
2	\N	20	b\tc
3	three	\N	\N
\.
copy cp (id, name) from stdin;
4	four
\.
select * from cp order by id;
copy cp from stdin;
5	five	x	z
\.
copy cp from stdin;
6	six	1
\.
copy cp from stdin;
7	seven	1	a	extra
\.
copy cp from stdin;
1	dup	1	a
\.
copy cp from stdin (format csv);
8,"a,b",3,"q"
9,,4,""
\.
copy cp to stdout;
copy cp (id, name) to stdout (format csv, header);
copy (select id, v * 2 from cp where id > 7 order by id) to stdout;
copy cp from stdin (freeze);
\.
select count(*) from cp;
drop table cp;
create table br (bid int4 primary key, name text);
create table te (tid int4 primary key, bid int4 references br);
insert into br values (1, 'one'), (2, 'two');
insert into te values (1, 1), (2, null);
insert into te values (3, 5);
update te set bid = 9 where tid = 1;
update te set bid = 2 where tid = 1;
delete from br where bid = 1;
delete from br where bid = 2;
update br set bid = 3 where bid = 2;
update br set name = 'TWO' where bid = 2;
create table hi (tid int4, bid int4);
insert into hi values (1, 7);
alter table hi add constraint hi_bid_fkey foreign key (bid) references br;
delete from hi;
alter table hi add constraint hi_bid_fkey foreign key (bid) references br;
alter table hi add foreign key (tid) references te (tid);
insert into hi values (1, 2);
insert into hi values (1, 3);
truncate br;
drop table br;
truncate br, te, hi;
drop table br cascade;
insert into te values (4, 77);
drop table te, hi;
-- numeric columns: typmod rounding, ordering, aggregates, an index
create table nt (id int4 primary key, n numeric(10,2), m numeric);
insert into nt values (1, 3.14159, 10), (2, -2.5, 1e20), (3, null, 'NaN'), (4, 100, 0.001), (5, -0.004, -7);
insert into nt values (6, 123456789.999, 0);
select * from nt order by n, id;
select * from nt order by m desc;
select sum(n), avg(m), max(n), min(m), count(n) from nt where id < 4;
create index nt_m on nt (m);
select id, m from nt where m > 5 order by m;
select id, m from nt where m = 0.001;
update nt set n = n * 3 where id = 1 returning n;
select n::text, pg_typeof(n) from nt where id = 2;
copy nt to stdout;
drop table nt;
-- ORDER BY ... LIMIT read from an index, both directions, with NULLs
create table ob (id int4 primary key, v int4 unique, t text);
insert into ob select g, (g * 7919) % 1000003, 'x' || g from generate_series(1, 3000) g;
insert into ob values (-5, null, null), (-6, null, 'n');
select id from ob order by id limit 3;
select id from ob order by id desc limit 3;
select v, id from ob order by v desc limit 4;
select v, id from ob order by v limit 3 offset 1;
select id, v from ob where id > 1000 order by id limit 2;
select id, v from ob where id < 100 order by v desc limit 3;
select id, v from ob where v >= 500000 order by v limit 3;
select id from ob order by id desc nulls last limit 2;
delete from ob where id <= 2990;
select id, t from ob order by id desc limit 3;
drop table ob;
-- float4 (real) and date columns: input, output, arithmetic, casts, ordering, aggregates, indexes, COPY
create table fd (id int4 primary key, r real, f float(10), d date default current_date, t timestamp);
insert into fd values (1, 0.1, 1.5, '2024-02-29', '2024-02-29 13:45'), (2, 1e10, -2.25, '1999-12-31', null), (3, 'NaN', 3, '2000-01-01', '2000-01-01 00:00');
insert into fd values (4, '-Infinity', 1e-3, 'infinity', '2030-06-15 08:00'), (5, 3.4e38, 0, '4714-11-24 BC', null), (6, -0.5, 16777217, '-infinity', null);
insert into fd (id, r) values (7, 2.5);
insert into fd values (13, 7, 7, 'Feb 29 2024'), (14, 8, 8, 'January 8, 1999');
select id, d from fd where id > 12 order by d;
delete from fd where id > 12;
select id, r, f, d, t from fd where id <> 7 order by id;
select d = current_date as today from fd where id = 7;
update fd set d = '2010-10-10' where id = 7;
insert into fd values (8, 1e39);
insert into fd values (8, '1e39');
insert into fd values (8, 1, 1, '2023-02-29');
insert into fd values (8, 1, 1, 'someday');
insert into fd values (8, 1, 1e300);
select id, r from fd order by r, id;
select id, r from fd order by r desc nulls last, id;
select id, d from fd order by d, id;
select id, d from fd order by d desc, id;
select r * 2, r + r, r / 4, -r, r::float8, r::numeric, pg_typeof(r * 2), pg_typeof(r + f) from fd where id in (1, 2, 6) order by id;
select r::int4, r::int8, r::int2, f::int4 from fd where id in (1, 6, 7) order by id;
select r::int4 from fd where id = 2;
select r * r from fd where id = 5;
select r / 0 from fd where id = 1;
select d + 1, d - 1, 1 + d, d - date '2000-01-01', d::timestamp, pg_typeof(d - d) from fd where id in (1, 2, 3) order by id;
select d + 1 from fd where id = 4;
select d - d from fd where id = 4;
select d > '2000-01-01', d = t, d < t, t::date from fd where id in (1, 2, 3, 4) order by id;
select id from fd where r > 1 order by id;
select id from fd where r = 0.1 order by id;
select id from fd where r = 0.1::real order by id;
select id from fd where r < 1 and r > -1 order by id;
select id from fd where d between '1999-01-01' and '2024-12-31' order by id;
select id from fd where d > t order by id;
select sum(r), avg(r), min(r), max(r), pg_typeof(sum(r)), pg_typeof(avg(r)) from fd where id in (1, 6, 7);
select sum(r) from fd where id in (2, 5);
select min(d), max(d), count(d) from fd;
select min(d), max(d) from fd where id < 4;
select sum(d) from fd;
update fd set r = r + 1, d = d + 30 where id = 1 returning r, d;
update fd set d = '2024-13-01' where id = 1;
update fd set d = t where id = 3 returning d;
create index fd_r on fd (r);
create index fd_d on fd (d);
select id, r from fd where r >= 0.5::real order by r;
select id, r from fd where r = 'NaN' order by id;
select id, d from fd where d = '2024-03-30';
select id, d from fd where d < '2000-06-01' order by d;
select id, d from fd where d >= 'infinity';
insert into fd values (9, 4.5, 0, '2024-03-30');
select id, r, d from fd where d = '2024-03-30' order by id;
create unique index fd_d_u on fd (d);
copy fd to stdout;
copy fd (id, r, d) to stdout (format csv);
delete from fd;
copy fd from stdin;
10	1.25	2	2024-01-01	\N
11	NaN	-0	infinity	2024-01-01 10:00:00
12	-1e-45	1e+30	4714-11-24 BC	\N
\.
copy fd from stdin;
13	x	1	2024-01-01	\N
\.
copy fd from stdin;
13	1	1	2024-02-30	\N
\.
select * from fd order by id;
select id from fd where r < 0;
create table fd2 (x float4 not null, y date not null);
insert into fd2 values (null, '2024-01-01');
insert into fd2 values (1, 2);
insert into fd2 values ('1', '2');
insert into fd2 select r, d from fd where id = 10;
select x, y, x::text, y::text from fd2;
drop table fd, fd2;
