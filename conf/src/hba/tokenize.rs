//! Splitting pg_hba.conf into lines, fields and tokens, as PostgreSQL 15's
//! `tokenize_auth_file` does.
//!
//! 1. A line ending in a backslash continues on the next line; the joined
//!    line keeps the first line's number.
//! 2. `#` outside double quotes starts a comment, even inside a token
//!    (`map=#x` is `map=`).
//! 3. Fields are separated by blanks. A token ending in a comma continues the
//!    field with the next token (`a, b` and `a,b` are one field of two).
//! 4. Double quotes group blanks and commas into a token and keep keywords
//!    from being keywords (`"all"` is a database named all); `""` inside
//!    quotes is a literal quote; `a"b c"d` is the single token `ab cd`.

/// One token and whether any part of it was quoted.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub text: String,
    pub quoted: bool,
}

impl Token {
    /// An unquoted token equal to `word`: a keyword.
    pub fn is_keyword(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// One non-empty logical line: its first physical line number and fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub number: usize,
    pub fields: Vec<Vec<Token>>,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Reads one token from `chars` starting at `*pos`: the token (None when
/// there is nothing but blanks or a comment) and whether a comma ended it.
fn next_token(chars: &[char], pos: &mut usize) -> (Option<Token>, bool) {
    while *pos < chars.len() && is_blank(chars[*pos]) {
        *pos += 1;
    }
    let mut text = String::new();
    let (mut in_quote, mut saw_quote, mut was_quote, mut comma) = (false, false, false, false);
    while *pos < chars.len() {
        let c = chars[*pos];
        if is_blank(c) && !in_quote {
            break;
        }
        *pos += 1;
        if c == '#' && !in_quote {
            *pos = chars.len();
            break;
        }
        if c == ',' && !in_quote {
            comma = true;
            break;
        }
        if c != '"' || was_quote {
            text.push(c);
        }
        was_quote = in_quote && c == '"' && !was_quote;
        if c == '"' {
            in_quote = !in_quote;
            saw_quote = true;
        }
    }
    if text.is_empty() && !saw_quote {
        return (None, comma);
    }
    (
        Some(Token {
            text,
            quoted: saw_quote,
        }),
        comma,
    )
}

/// Splits one logical line into fields.
fn fields_of(line: &str) -> Vec<Vec<Token>> {
    let chars: Vec<char> = line.chars().collect();
    let mut pos = 0;
    let mut fields = Vec::new();
    while pos < chars.len() {
        let mut field = Vec::new();
        loop {
            let (token, comma) = next_token(&chars, &mut pos);
            match token {
                Some(t) => field.push(t),
                None => break,
            }
            if !comma {
                break;
            }
        }
        if !field.is_empty() {
            fields.push(field);
        }
    }
    fields
}

/// Splits the file into its non-empty logical lines.
pub fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut physical = text.split('\n').enumerate();
    while let Some((i, first)) = physical.next() {
        let mut joined = first.trim_end_matches('\r').to_string();
        while joined.ends_with('\\') {
            joined.pop();
            match physical.next() {
                Some((_, next)) => joined.push_str(next.trim_end_matches('\r')),
                None => break,
            }
        }
        let fields = fields_of(&joined);
        if !fields.is_empty() {
            out.push(Line {
                number: i + 1,
                fields,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<Vec<String>> {
        fields_of(line)
            .into_iter()
            .map(|f| f.into_iter().map(|t| t.text).collect())
            .collect()
    }

    #[test]
    fn fields_and_comma_lists() {
        assert_eq!(
            texts("host all all 1.2.3.4/32 trust"),
            [["host"], ["all"], ["all"], ["1.2.3.4/32"], ["trust"]]
        );
        assert_eq!(
            texts("host a,b c, d e"),
            vec![vec!["host"], vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        assert_eq!(
            texts("host all all 1.2.3.4/32 md5 # c"),
            [["host"], ["all"], ["all"], ["1.2.3.4/32"], ["md5"]]
        );
        assert_eq!(
            texts("local all all md5 map=#c"),
            [["local"], ["all"], ["all"], ["md5"], ["map="]]
        );
        assert!(texts("   # only a comment").is_empty());
    }

    #[test]
    fn quotes_group_and_mark_tokens() {
        let f = fields_of(r#"host "all","sameuser" "Alice" a"b"c a" "b "" "x""y""#);
        assert_eq!(
            f[1],
            vec![
                Token {
                    text: "all".into(),
                    quoted: true
                },
                Token {
                    text: "sameuser".into(),
                    quoted: true
                }
            ]
        );
        assert_eq!(
            f[2],
            vec![Token {
                text: "Alice".into(),
                quoted: true
            }]
        );
        assert_eq!(f[3][0].text, "abc");
        assert_eq!(f[4][0].text, "a b");
        assert_eq!(
            f[5][0],
            Token {
                text: String::new(),
                quoted: true
            }
        );
        assert_eq!(f[6][0].text, "x\"y");
        assert!(!f[0][0].quoted && f[0][0].is_keyword("host"));
    }

    #[test]
    fn backslash_continues_a_line() {
        let l = lines("# header\n\nhost all all 1.2.3.4/32 \\\n   trust\nlocal all all peer\n");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].number, 3);
        assert_eq!(l[0].fields.len(), 5);
        assert_eq!(l[1].number, 5);
    }
}
