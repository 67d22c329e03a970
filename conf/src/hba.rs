//! pg_hba.conf: which connections may log in, and how they authenticate.
//!
//! The postmaster loads the file at start and on SIGHUP (a file with errors
//! is refused whole, and the previous rules stay, as in PostgreSQL); each
//! backend calls [`HbaRules::check`] once, after reading the startup packet,
//! and authenticates with the method of the first matching rule.
//!
//! # Format (PostgreSQL 15's own)
//!
//! ```text
//! # TYPE  DATABASE        USER            ADDRESS                 METHOD   [OPTIONS]
//! local   all             all                                     trust
//! host    all             all             127.0.0.1/32            scram-sha-256
//! host    sales,"Mixed"   +managers       10.0.0.0 255.0.0.0      md5
//! hostssl replication     all             ::1/128                 cert clientcert=verify-full
//! ```
//!
//! Tokenising is in `hba/tokenize.rs`, numeric addresses in
//! `hba/address.rs`. Error messages are PostgreSQL's, each with the line
//! it came from (PostgreSQL's CONTEXT `line N of configuration file "..."`).
//!
//! # Matching rules
//!
//! 1. Rules are tried in file order; the first whose type, database, user
//!    and address all match decides (even `reject`).
//! 2. `local` matches Unix-socket connections; `host` and `hostnossl` and
//!    `hostnogssenc` match TCP connections. This server has neither SSL nor
//!    GSSAPI encryption, so `hostssl` and `hostgssenc` rules never match;
//!    they parse, with a warning, as PostgreSQL built without them does.
//! 3. Database `all` matches every database but not a physical replication
//!    connection, which only the `replication` keyword matches. `sameuser`
//!    matches a database named like the user; `samerole` (or `samegroup`)
//!    one named like a role the user belongs to.
//! 4. User `+name` matches members of role `name`. Membership comes from the
//!    caller ([`HbaRules::check_with`]); [`HbaRules::check`] knows only that
//!    every role is a member of itself, which is all there is until roles
//!    can have members.
//! 5. Host names (`.example.com`, `db.example.com`) are parsed but never
//!    match: no DNS lookups are made (a warning says so). `samehost` and
//!    `samenet` match loopback clients only, as the server's own interface
//!    list is not consulted (warning too).
//! 6. `@file` inclusions are refused with an error.

mod address;
mod tokenize;

pub use tokenize::Token;

use pgerror::{PgError, SqlState};
use std::net::IpAddr;
use std::path::Path;
use tokenize::Line;

/// The first field of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
    HostGssEnc,
    HostNoGssEnc,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseMatch {
    All,
    SameUser,
    SameRole,
    Replication,
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserMatch {
    All,
    /// `+role`: members of the role.
    MemberOf(String),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressMatch {
    All,
    SameHost,
    SameNet,
    Range {
        addr: IpAddr,
        mask: IpAddr,
    },
    /// A host name, or a `.suffix`; never matches (rule 5).
    Hostname(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    Reject,
    Md5,
    Password,
    ScramSha256,
    Peer,
    Ident,
    Gss,
    Pam,
    Ldap,
    Radius,
    Cert,
}

impl AuthMethod {
    /// The name as pg_hba.conf spells it (`pg_hba_file_rules.auth_method`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Reject => "reject",
            AuthMethod::Md5 => "md5",
            AuthMethod::Password => "password",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Peer => "peer",
            AuthMethod::Ident => "ident",
            AuthMethod::Gss => "gss",
            AuthMethod::Pam => "pam",
            AuthMethod::Ldap => "ldap",
            AuthMethod::Radius => "radius",
            AuthMethod::Cert => "cert",
        }
    }
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub struct HbaRule {
    pub line: usize,
    pub conn_type: ConnType,
    pub databases: Vec<DatabaseMatch>,
    pub users: Vec<UserMatch>,
    /// None for `local` rules.
    pub address: Option<AddressMatch>,
    pub method: AuthMethod,
    /// `name=value` options after the method, in order.
    pub options: Vec<(String, String)>,
}

impl HbaRule {
    /// The value of option `name`, if given.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A problem on one line: an error, or a warning for a rule that parses but
/// can never match.
#[derive(Clone, Debug, PartialEq)]
pub struct HbaError {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl HbaError {
    fn new(line: usize, message: impl Into<String>) -> HbaError {
        HbaError {
            line,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: &str) -> HbaError {
        self.hint = Some(hint.to_string());
        self
    }

    /// PostgreSQL's CONTEXT line for it.
    pub fn context(&self, path: &str) -> String {
        format!("line {} of configuration file \"{path}\"", self.line)
    }
}

/// The connection being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HbaConn {
    /// A Unix-domain socket.
    Local,
    /// TCP, from this client address.
    Host(IpAddr),
}

/// The rules of one pg_hba.conf, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct HbaRules {
    pub path: String,
    pub rules: Vec<HbaRule>,
    /// Lines that parse but can never match, for the postmaster to log.
    pub warnings: Vec<HbaError>,
}

impl HbaRules {
    /// Reads and parses a pg_hba.conf. On error, the first problem as
    /// PostgreSQL logs it (code F0000), its CONTEXT line and any further
    /// problems in the DETAIL; the caller refuses the whole file.
    pub fn load(path: &Path) -> Result<HbaRules, PgError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                SqlState(*b"58P01")
            } else {
                SqlState::IO_ERROR
            };
            let reason = crate::file::io_message(&e);
            PgError::new(
                code,
                format!("could not open configuration file \"{shown}\": {reason}"),
            )
        })?;
        HbaRules::parse(&text, &shown)
    }

    /// Parses the text of a pg_hba.conf; `path` is for messages.
    pub fn parse(text: &str, path: &str) -> Result<HbaRules, PgError> {
        HbaRules::parse_all(text, path).map_err(|errors| {
            let first = &errors[0];
            let mut detail = first.context(path);
            for other in &errors[1..] {
                detail.push_str(&format!("\n{} ({})", other.message, other.context(path)));
            }
            let mut e = PgError::new(SqlState::CONFIG_FILE_ERROR, first.message.clone())
                .with_detail(detail);
            e.hint = first.hint.clone();
            e
        })
    }

    /// Parses the text of a pg_hba.conf, returning every bad line.
    pub fn parse_all(text: &str, path: &str) -> Result<HbaRules, Vec<HbaError>> {
        let mut rules = Vec::new();
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        for line in tokenize::lines(text) {
            match parse_line(&line, &mut warnings) {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(HbaRules {
            path: path.to_string(),
            rules,
            warnings,
        })
    }

    /// The rule deciding a normal (non-replication) connection, if any,
    /// knowing no role memberships (rule 4).
    pub fn check(&self, conn: &HbaConn, database: &str, user: &str) -> Option<&HbaRule> {
        self.check_with(conn, database, user, false, &|member, role| member == role)
    }

    /// The rule deciding a connection. `replication` is true for a physical
    /// replication connection; `is_member(user, role)` answers role
    /// membership for `+role` and `samerole`.
    pub fn check_with(
        &self,
        conn: &HbaConn,
        database: &str,
        user: &str,
        replication: bool,
        is_member: &dyn Fn(&str, &str) -> bool,
    ) -> Option<&HbaRule> {
        self.rules.iter().find(|rule| {
            conn_matches(rule, conn)
                && rule.databases.iter().any(|d| match d {
                    DatabaseMatch::Replication => replication,
                    _ if replication => false,
                    DatabaseMatch::All => true,
                    DatabaseMatch::SameUser => database == user,
                    DatabaseMatch::SameRole => is_member(user, database),
                    DatabaseMatch::Name(name) => name == database,
                })
                && rule.users.iter().any(|u| match u {
                    UserMatch::All => true,
                    UserMatch::MemberOf(role) => is_member(user, role),
                    UserMatch::Name(name) => name == user,
                })
        })
    }
}

fn conn_matches(rule: &HbaRule, conn: &HbaConn) -> bool {
    match conn {
        HbaConn::Local => rule.conn_type == ConnType::Local,
        HbaConn::Host(client) => {
            matches!(
                rule.conn_type,
                ConnType::Host | ConnType::HostNoSsl | ConnType::HostNoGssEnc
            ) && match &rule.address {
                Some(AddressMatch::All) => true,
                Some(AddressMatch::SameHost | AddressMatch::SameNet) => client.is_loopback(),
                Some(AddressMatch::Range { addr, mask }) => {
                    address::in_range(*client, *addr, *mask)
                }
                Some(AddressMatch::Hostname(_)) | None => false,
            }
        }
    }
}

/// Exactly one token for a single-valued field.
fn single<'a>(
    field: Option<&'a Vec<Token>>,
    line: usize,
    what: &str,
    hint: &str,
) -> Result<Option<&'a Token>, HbaError> {
    match field {
        None => Ok(None),
        Some(tokens) if tokens.len() > 1 => {
            Err(HbaError::new(line, format!("multiple values specified for {what}")).hint(hint))
        }
        Some(tokens) => Ok(tokens.first()),
    }
}

fn parse_line(line: &Line, warnings: &mut Vec<HbaError>) -> Result<HbaRule, HbaError> {
    let n = line.number;
    let mut fields = line.fields.iter();
    let type_token = single(
        fields.next(),
        n,
        "connection type",
        "Specify exactly one connection type per line.",
    )?
    .expect("a line has at least one field");
    let conn_type = match type_token.text.as_str() {
        "local" => ConnType::Local,
        "host" => ConnType::Host,
        "hostssl" => {
            warnings.push(HbaError::new(
                n,
                "hostssl record cannot match because SSL is not supported by this build",
            ));
            ConnType::HostSsl
        }
        "hostnossl" => ConnType::HostNoSsl,
        "hostgssenc" => {
            warnings.push(HbaError::new(
                n,
                "hostgssenc record cannot match because GSSAPI is not supported by this build",
            ));
            ConnType::HostGssEnc
        }
        "hostnogssenc" => ConnType::HostNoGssEnc,
        other => {
            return Err(HbaError::new(
                n,
                format!("invalid connection type \"{other}\""),
            ))
        }
    };

    let databases = fields
        .next()
        .ok_or_else(|| HbaError::new(n, "end-of-line before database specification"))?
        .iter()
        .map(|t| {
            Ok(match t.text.as_str() {
                _ if t.quoted => DatabaseMatch::Name(t.text.clone()),
                "all" => DatabaseMatch::All,
                "sameuser" => DatabaseMatch::SameUser,
                "samerole" | "samegroup" => DatabaseMatch::SameRole,
                "replication" => DatabaseMatch::Replication,
                s if s.starts_with('@') && s.len() > 1 => return Err(include_unsupported(n, s)),
                s => DatabaseMatch::Name(s.to_string()),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let users = fields
        .next()
        .ok_or_else(|| HbaError::new(n, "end-of-line before role specification"))?
        .iter()
        .map(|t| {
            Ok(match t.text.as_str() {
                _ if t.quoted => UserMatch::Name(t.text.clone()),
                "all" => UserMatch::All,
                s if s.starts_with('+') && s.len() > 1 => UserMatch::MemberOf(s[1..].to_string()),
                s if s.starts_with('@') && s.len() > 1 => return Err(include_unsupported(n, s)),
                s => UserMatch::Name(s.to_string()),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let address = if conn_type == ConnType::Local {
        None
    } else {
        Some(parse_address(&mut fields, n, warnings)?)
    };

    let method_token = single(
        fields.next(),
        n,
        "authentication type",
        "Specify exactly one authentication type per line.",
    )?
    .ok_or_else(|| HbaError::new(n, "end-of-line before authentication method"))?;
    let method = parse_method(&method_token.text, conn_type, n)?;

    let mut options = Vec::new();
    for token in fields.flatten() {
        let (name, value) = token.text.split_once('=').ok_or_else(|| {
            HbaError::new(
                n,
                format!(
                    "authentication option not in name=value format: {}",
                    token.text
                ),
            )
        })?;
        check_option(name, value, method, conn_type, n)?;
        options.push((name.to_string(), value.to_string()));
    }
    check_required_options(method, &options, n)?;
    Ok(HbaRule {
        line: n,
        conn_type,
        databases,
        users,
        address,
        method,
        options,
    })
}

fn include_unsupported(line: usize, token: &str) -> HbaError {
    HbaError::new(
        line,
        format!("secondary authentication file \"{token}\" is not supported"),
    )
    .hint("List the names in pg_hba.conf itself.")
}

fn parse_address(
    fields: &mut std::slice::Iter<'_, Vec<Token>>,
    n: usize,
    warnings: &mut Vec<HbaError>,
) -> Result<AddressMatch, HbaError> {
    let token = single(
        fields.next(),
        n,
        "host address",
        "Specify one address range per line.",
    )?
    .ok_or_else(|| HbaError::new(n, "end-of-line before IP address specification"))?;
    let text = token.text.as_str();
    if token.is_keyword("all") {
        return Ok(AddressMatch::All);
    }
    if token.is_keyword("samehost") || token.is_keyword("samenet") {
        warnings.push(HbaError::new(
            n,
            format!("\"{text}\" matches only loopback clients here"),
        ));
        return Ok(if text == "samehost" {
            AddressMatch::SameHost
        } else {
            AddressMatch::SameNet
        });
    }
    let (host, bits) = match text.split_once('/') {
        Some((host, bits)) => (host, Some(bits)),
        None => (text, None),
    };
    let Some(addr) = address::parse_ip(host) else {
        if bits.is_some() {
            return Err(HbaError::new(
                n,
                format!("specifying both host name and CIDR mask is invalid: \"{text}\""),
            ));
        }
        warnings.push(HbaError::new(
            n,
            format!("host name \"{text}\" never matches: host names are not looked up"),
        ));
        return Ok(AddressMatch::Hostname(text.to_string()));
    };
    let mask = match bits {
        Some(bits) => address::cidr_mask(bits, addr)
            .ok_or_else(|| HbaError::new(n, format!("invalid CIDR mask in address \"{text}\"")))?,
        None => {
            let mask_token = single(
                fields.next(),
                n,
                "netmask",
                "Specify one address range per line.",
            )?
            .ok_or_else(|| {
                HbaError::new(n, "end-of-line before netmask specification").hint(
                    "Specify an address range in CIDR notation, or provide a separate netmask.",
                )
            })?;
            let mask = address::parse_ip(&mask_token.text).ok_or_else(|| {
                HbaError::new(
                    n,
                    format!(
                        "invalid IP mask \"{}\": Name or service not known",
                        mask_token.text
                    ),
                )
            })?;
            if mask.is_ipv4() != addr.is_ipv4() {
                return Err(HbaError::new(n, "IP address and mask do not match"));
            }
            mask
        }
    };
    Ok(AddressMatch::Range { addr, mask })
}

fn parse_method(text: &str, conn_type: ConnType, n: usize) -> Result<AuthMethod, HbaError> {
    let method = match text {
        "trust" => AuthMethod::Trust,
        "reject" => AuthMethod::Reject,
        "md5" => AuthMethod::Md5,
        "password" => AuthMethod::Password,
        "scram-sha-256" => AuthMethod::ScramSha256,
        "peer" => AuthMethod::Peer,
        // PostgreSQL quietly turns ident on a Unix socket into peer.
        "ident" if conn_type == ConnType::Local => AuthMethod::Peer,
        "ident" => AuthMethod::Ident,
        "gss" => AuthMethod::Gss,
        "pam" => AuthMethod::Pam,
        "ldap" => AuthMethod::Ldap,
        "radius" => AuthMethod::Radius,
        "cert" => AuthMethod::Cert,
        "sspi" | "bsd" => {
            return Err(HbaError::new(
                n,
                format!("invalid authentication method \"{text}\": not supported by this build"),
            ))
        }
        _ => {
            return Err(HbaError::new(
                n,
                format!("invalid authentication method \"{text}\""),
            ))
        }
    };
    match (conn_type, method) {
        (ConnType::Local, AuthMethod::Gss) => Err(HbaError::new(
            n,
            "gssapi authentication is not supported on local sockets",
        )),
        (c, AuthMethod::Peer) if c != ConnType::Local => Err(HbaError::new(
            n,
            "peer authentication is only supported on local sockets",
        )),
        (c, AuthMethod::Cert) if c != ConnType::HostSsl => Err(HbaError::new(
            n,
            "cert authentication is only supported on hostssl connections",
        )),
        _ => Ok(method),
    }
}

fn check_option(
    name: &str,
    value: &str,
    method: AuthMethod,
    conn_type: ConnType,
    n: usize,
) -> Result<(), HbaError> {
    use AuthMethod::*;
    let only = |ok: bool, methods: &str| {
        if ok {
            Ok(())
        } else {
            Err(HbaError::new(n, format!("authentication option \"{name}\" is only valid for authentication methods {methods}")))
        }
    };
    match name {
        "map" => only(
            matches!(method, Ident | Peer | Gss | Cert),
            "ident, peer, gssapi, sspi, and cert",
        ),
        "clientcert" | "clientname" => {
            if conn_type != ConnType::HostSsl {
                return Err(HbaError::new(
                    n,
                    format!("{name} can only be configured for \"hostssl\" rows"),
                ));
            }
            let valid: &[&str] = if name == "clientcert" {
                &["verify-ca", "verify-full"]
            } else {
                &["CN", "DN"]
            };
            if !valid.contains(&value) {
                return Err(HbaError::new(
                    n,
                    format!("invalid value for {name}: \"{value}\""),
                ));
            }
            if name == "clientcert" && method == Cert && value != "verify-full" {
                return Err(HbaError::new(
                    n,
                    "clientcert only accepts \"verify-full\" when using \"cert\" authentication",
                ));
            }
            Ok(())
        }
        "pamservice" | "pam_use_hostname" => only(method == Pam, "pam"),
        "ldapurl"
        | "ldaptls"
        | "ldapscheme"
        | "ldapserver"
        | "ldapport"
        | "ldapbinddn"
        | "ldapbindpasswd"
        | "ldapsearchattribute"
        | "ldapsearchfilter"
        | "ldapbasedn"
        | "ldapprefix"
        | "ldapsuffix" => only(method == Ldap, "ldap"),
        "krb_realm" | "include_realm" => only(method == Gss, "gssapi and sspi"),
        "compat_realm" | "upn_username" => only(false, "sspi"),
        "radiusserver" | "radiusservers" | "radiussecret" | "radiussecrets"
        | "radiusidentifier" | "radiusidentifiers" | "radiusport" | "radiusports" => {
            only(method == Radius, "radius")
        }
        _ => Err(HbaError::new(
            n,
            format!("unrecognized authentication option name: \"{name}\""),
        )),
    }
}

fn check_required_options(
    method: AuthMethod,
    options: &[(String, String)],
    n: usize,
) -> Result<(), HbaError> {
    let has = |name: &str| options.iter().any(|(o, _)| o == name);
    match method {
        AuthMethod::Ldap if !(has("ldapbasedn") || has("ldapprefix") || has("ldapsuffix") || has("ldapurl")) => Err(HbaError::new(
            n,
            "authentication method \"ldap\" requires argument \"ldapbasedn\", \"ldapprefix\", or \"ldapsuffix\" to be set",
        )),
        AuthMethod::Radius if !(has("radiusservers") || has("radiusserver")) => {
            Err(HbaError::new(n, "authentication method \"radius\" requires argument \"radiusservers\" to be set"))
        }
        _ => Ok(()),
    }
}

/// The pg_hba.conf initdb writes: trust for local and loopback connections,
/// ordinary and replication.
pub fn default_hba_conf() -> String {
    "# pg_hba.conf: client authentication, in PostgreSQL's format.\n\
     #\n\
     # Each line is a rule: TYPE DATABASE USER [ADDRESS] METHOD [OPTIONS].\n\
     # The first rule matching a connection's type, database, user and client\n\
     # address decides how it authenticates. TYPE is local (Unix socket) or host\n\
     # (TCP); DATABASE and USER are names, comma lists, or all; ADDRESS is a\n\
     # CIDR range such as 127.0.0.1/32. METHOD is trust, reject, password, md5 or\n\
     # scram-sha-256 (and peer for local). Changes take effect on reload.\n\
     #\n\
     # The rules below trust every local user: set passwords and change trust\n\
     # to scram-sha-256 before letting others connect.\n\
     \n\
     # TYPE  DATABASE        USER            ADDRESS                 METHOD\n\
     \n\
     # Unix-domain socket connections\n\
     local   all             all                                     trust\n\
     # IPv4 loopback connections\n\
     host    all             all             127.0.0.1/32            trust\n\
     # IPv6 loopback connections\n\
     host    all             all             ::1/128                 trust\n\
     # Replication connections from this machine\n\
     local   replication     all                                     trust\n\
     host    replication     all             127.0.0.1/32            trust\n\
     host    replication     all             ::1/128                 trust\n"
        .to_string()
}

#[cfg(test)]
mod tests;
