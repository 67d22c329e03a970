//! pg_hba.conf tests. The error texts are the ones PostgreSQL 15 reported
//! for the same lines in `pg_hba_file_rules.error`.

use super::*;

fn rules(text: &str) -> HbaRules {
    HbaRules::parse(text, "/d/pg_hba.conf").unwrap_or_else(|e| panic!("{e}"))
}

fn error_of(line: &str) -> String {
    match HbaRules::parse_all(line, "/d/pg_hba.conf") {
        Err(errors) => errors[0].message.clone(),
        other => panic!("{line:?} parsed: {other:?}"),
    }
}

fn host(ip: &str) -> HbaConn {
    HbaConn::Host(ip.parse().unwrap())
}

#[test]
fn errors_match_postgres() {
    let cases = [
        ("bogus all all trust", "invalid connection type \"bogus\""),
        ("host all all", "end-of-line before IP address specification"),
        ("host all", "end-of-line before role specification"),
        ("host", "end-of-line before database specification"),
        ("local all all", "end-of-line before authentication method"),
        ("host all all 1.2.3.4", "end-of-line before netmask specification"),
        ("host all all 127.0.0.1/33 trust", "invalid CIDR mask in address \"127.0.0.1/33\""),
        ("host all all 1.2.3.4/ trust", "invalid CIDR mask in address \"1.2.3.4/\""),
        ("host all all 1.2.3.4/-1 trust", "invalid CIDR mask in address \"1.2.3.4/-1\""),
        ("host all all 1.2.3.4/32.5 trust", "invalid CIDR mask in address \"1.2.3.4/32.5\""),
        ("host all all ::1/129 trust", "invalid CIDR mask in address \"::1/129\""),
        ("host all all 127.0.0.1 trust", "invalid IP mask \"trust\": Name or service not known"),
        ("host all all 127.0.0.1 bogusmask md5", "invalid IP mask \"bogusmask\": Name or service not known"),
        ("host all all 1.2.3.4 ::1 trust", "IP address and mask do not match"),
        ("host all all 10.0.0.0/8 bogus", "invalid authentication method \"bogus\""),
        ("local all all krb5", "invalid authentication method \"krb5\""),
        ("local all all sspi", "invalid authentication method \"sspi\": not supported by this build"),
        ("host all all 1.2.3.4/32 bsd", "invalid authentication method \"bsd\": not supported by this build"),
        ("host all all 1.2.3.4/32 \"\"", "invalid authentication method \"\""),
        ("host all all 1.2.3.4/32 255.255.255.255 trust", "invalid authentication method \"255.255.255.255\""),
        ("local all all 1.2.3.4/32 trust", "invalid authentication method \"1.2.3.4/32\""),
        ("host all all 1.2.3.256/32 trust", "specifying both host name and CIDR mask is invalid: \"1.2.3.256/32\""),
        ("host all all 1.2.3.4/32,5.6.7.8/32 trust", "multiple values specified for host address"),
        ("host all all 1.2.3.4/32 trust,md5", "multiple values specified for authentication type"),
        ("host all, all 1.2.3.4/32 trust", "end-of-line before authentication method"),
        ("host all all 1.2.3.4/32 peer", "peer authentication is only supported on local sockets"),
        ("local all all gss", "gssapi authentication is not supported on local sockets"),
        ("local all all md5 map=foo", "authentication option \"map\" is only valid for authentication methods ident, peer, gssapi, sspi, and cert"),
        ("host all all 1.2.3.4/32 md5 map=#c", "authentication option \"map\" is only valid for authentication methods ident, peer, gssapi, sspi, and cert"),
        ("host all all 1.2.3.4/32 trust bogusopt=1", "unrecognized authentication option name: \"bogusopt\""),
        ("host all all 1.2.3.4/32 trust =x", "unrecognized authentication option name: \"\""),
        ("host all all 1.2.3.4/32 trust \"a=b\"", "unrecognized authentication option name: \"a\""),
        ("host all all 1.2.3.4/32 trust noequals", "authentication option not in name=value format: noequals"),
        ("host all all 1.2.3.4/32 trust clientcert=verify-ca", "clientcert can only be configured for \"hostssl\" rows"),
        ("host all all 1.2.3.4/32 trust clientname=CN", "clientname can only be configured for \"hostssl\" rows"),
        ("host all all 1.2.3.4/32 trust ldapserver=x", "authentication option \"ldapserver\" is only valid for authentication methods ldap"),
        ("host all all 1.2.3.4/32 trust pamservice=x", "authentication option \"pamservice\" is only valid for authentication methods pam"),
        ("host all all 1.2.3.4/32 trust radiusservers=x", "authentication option \"radiusservers\" is only valid for authentication methods radius"),
        ("host all all 1.2.3.4/32 trust krb_realm=x", "authentication option \"krb_realm\" is only valid for authentication methods gssapi and sspi"),
        ("host all all 1.2.3.4/32 trust upn_username=1", "authentication option \"upn_username\" is only valid for authentication methods sspi"),
        ("host all all 1.2.3.4/32 trust include_realm=1", "authentication option \"include_realm\" is only valid for authentication methods gssapi and sspi"),
        ("host all all 1.2.3.4/32 ldap", "authentication method \"ldap\" requires argument \"ldapbasedn\", \"ldapprefix\", or \"ldapsuffix\" to be set"),
        ("host all all 1.2.3.4/32 radius", "authentication method \"radius\" requires argument \"radiusservers\" to be set"),
    ];
    for (line, message) in cases {
        assert_eq!(error_of(line), message, "{line}");
    }
}

#[test]
fn every_bad_line_is_reported_with_its_number() {
    let text = "local all all trust\nbogus all all trust\n\nhost all all\n";
    let errors = HbaRules::parse_all(text, "/d/pg_hba.conf").unwrap_err();
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(
        errors[0].context("/d/pg_hba.conf"),
        "line 2 of configuration file \"/d/pg_hba.conf\""
    );
    let e = HbaRules::parse(text, "/d/pg_hba.conf").unwrap_err();
    assert_eq!(e.code, SqlState::CONFIG_FILE_ERROR);
    assert_eq!(e.message, "invalid connection type \"bogus\"");
    assert_eq!(
        e.detail.as_deref(),
        Some(concat!(
            "line 2 of configuration file \"/d/pg_hba.conf\"\n",
            "end-of-line before IP address specification (line 4 of configuration file \"/d/pg_hba.conf\")"
        ))
    );
}

#[test]
fn lines_parse_into_rules() {
    let r = rules(concat!(
        "# comment\n",
        "local all all trust\n",
        "host sameuser,samerole +grp,alice 1.2.3.4/32 md5\n",
        "host \"all\",\"sameuser\" \"Alice\" 10.0.0.0 255.0.0.0 scram-sha-256\n",
        "host replication all ::1/128 password\n",
        "local all all ident map=foo\n",
        "host all all 1.2.3.4/32 \\\n   reject\n",
        "host samegroup all all trust\n",
        "hostssl all all 1.2.3.4/32 cert clientcert=verify-full\n",
        "hostnossl all all 0.0.0.0/0 password\n",
    ));
    assert_eq!(r.rules.len(), 9);
    let line3 = &r.rules[1];
    assert_eq!(line3.line, 3);
    assert_eq!(
        line3.databases,
        [DatabaseMatch::SameUser, DatabaseMatch::SameRole]
    );
    assert_eq!(
        line3.users,
        [
            UserMatch::MemberOf("grp".into()),
            UserMatch::Name("alice".into())
        ]
    );
    assert_eq!(line3.method, AuthMethod::Md5);
    let line4 = &r.rules[2];
    assert_eq!(
        line4.databases,
        [
            DatabaseMatch::Name("all".into()),
            DatabaseMatch::Name("sameuser".into())
        ]
    );
    assert_eq!(line4.users, [UserMatch::Name("Alice".into())]);
    assert_eq!(
        line4.address,
        Some(AddressMatch::Range {
            addr: "10.0.0.0".parse().unwrap(),
            mask: "255.0.0.0".parse().unwrap()
        })
    );
    assert_eq!(
        r.rules[4].method,
        AuthMethod::Peer,
        "ident on local becomes peer"
    );
    assert_eq!(r.rules[4].option("map"), Some("foo"));
    assert_eq!(r.rules[5].line, 7);
    assert_eq!(r.rules[5].method, AuthMethod::Reject);
    assert_eq!(r.rules[6].databases, [DatabaseMatch::SameRole]);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].line, 10);
    assert_eq!(
        r.warnings[0].message,
        "hostssl record cannot match because SSL is not supported by this build"
    );
}

#[test]
fn first_matching_rule_wins() {
    let r = rules(concat!(
        "local all alice reject\n",
        "local all all trust\n",
        "host app all 10.0.0.0/8 md5\n",
        "host all all 10.1.0.0/16 reject\n",
        "host all all 127.0.0.1/32 scram-sha-256\n",
        "hostssl all all 0.0.0.0/0 trust\n",
        "host replication repl ::1/128 trust\n",
    ));
    let line = |conn: HbaConn, db: &str, user: &str| r.check(&conn, db, user).map(|rule| rule.line);
    assert_eq!(line(HbaConn::Local, "x", "alice"), Some(1));
    assert_eq!(line(HbaConn::Local, "x", "bob"), Some(2));
    assert_eq!(line(host("10.1.2.3"), "app", "bob"), Some(3));
    assert_eq!(line(host("10.1.2.3"), "other", "bob"), Some(4));
    assert_eq!(line(host("127.0.0.1"), "other", "bob"), Some(5));
    assert_eq!(line(host("::ffff:127.0.0.1"), "other", "bob"), Some(5));
    assert_eq!(
        line(host("192.168.0.1"), "other", "bob"),
        None,
        "hostssl never matches"
    );
    assert_eq!(
        line(host("::1"), "replication", "repl"),
        None,
        "the keyword is not a database name"
    );
    let repl = r
        .check_with(&host("::1"), "", "repl", true, &|u, g| u == g)
        .map(|rule| rule.line);
    assert_eq!(repl, Some(7));
    let repl = r.check_with(&HbaConn::Local, "", "repl", true, &|u, g| u == g);
    assert!(repl.is_none(), "all does not match replication connections");
}

#[test]
fn keywords_and_membership() {
    let r = rules(concat!(
        "local sameuser all trust\n",
        "local samerole all md5\n",
        "local all +admins password\n",
        "local \"all\" all reject\n",
    ));
    let line = |db: &str, user: &str| r.check(&HbaConn::Local, db, user).map(|rule| rule.line);
    assert_eq!(line("bob", "bob"), Some(1));
    assert_eq!(line("x", "admins"), Some(3), "a role is a member of itself");
    assert_eq!(line("all", "bob"), Some(4));
    assert_eq!(line("x", "bob"), None);
    let member = |u: &str, g: &str| u == g || (u == "bob" && g == "admins");
    let found = |db: &str| {
        r.check_with(&HbaConn::Local, db, "bob", false, &member)
            .map(|rule| rule.line)
    };
    assert_eq!(found("admins"), Some(2), "samerole: bob belongs to admins");
    assert_eq!(found("x"), Some(3));
}

#[test]
fn host_names_and_samehost_are_parsed_but_limited() {
    let r = rules(
        "host all all .example.com trust\nhost all all samehost md5\nhost all all samenet md5\n",
    );
    assert_eq!(
        r.rules[0].address,
        Some(AddressMatch::Hostname(".example.com".into()))
    );
    assert_eq!(r.warnings.len(), 3);
    assert_eq!(
        r.check(&host("127.0.0.1"), "d", "u").map(|rule| rule.line),
        Some(2)
    );
    assert_eq!(r.check(&host("10.0.0.1"), "d", "u"), None);
}

#[test]
fn include_files_are_refused() {
    assert_eq!(
        error_of("host @dbfile all 1.2.3.4/32 trust"),
        "secondary authentication file \"@dbfile\" is not supported"
    );
}

#[test]
fn the_initdb_file_parses_and_trusts_local_connections() {
    let r = rules(&default_hba_conf());
    assert_eq!(r.rules.len(), 6);
    assert!(r.warnings.is_empty());
    for conn in [HbaConn::Local, host("127.0.0.1"), host("::1")] {
        assert_eq!(
            r.check(&conn, "postgres", "anyone")
                .map(|rule| rule.method.as_str()),
            Some("trust")
        );
        let repl = r.check_with(&conn, "", "anyone", true, &|u, g| u == g);
        assert_eq!(repl.map(|rule| rule.method.as_str()), Some("trust"));
    }
    assert!(r.check(&host("10.0.0.1"), "postgres", "anyone").is_none());
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("conf-hba-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pg_hba.conf");
    std::fs::write(&path, default_hba_conf()).unwrap();
    assert_eq!(HbaRules::load(&path).unwrap().rules.len(), 6);
    let missing = HbaRules::load(&dir.join("nope")).unwrap_err();
    assert_eq!(
        missing.message,
        format!(
            "could not open configuration file \"{}\": No such file or directory",
            dir.join("nope").display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
