//! Database credentials from Secrets Manager, in the format RDS writes
//! (`{"username": …, "password": …, …}`). The password lives only here and in
//! `pg_dump`'s environment: it is never logged, reported or printed.

use aws_sdk_secretsmanager::Client;
use std::fmt;

/// A database login. Its `Debug` hides the password.
pub struct Credentials {
    /// The role to connect as.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Reads the credentials in secret `arn`. The error names the secret and what
/// is wrong, never the secret's value.
pub async fn credentials(client: &Client, arn: &str) -> Result<Credentials, String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| format!("secret {arn}: {}", crate::aws::summarize(&e)))?;
    let text = out
        .secret_string()
        .ok_or_else(|| format!("secret {arn} holds no string (binary secrets are not read)"))?;
    parse(text).map_err(|why| format!("secret {arn} {why}"))
}

/// Parses an RDS-format secret.
fn parse(text: &str) -> Result<Credentials, String> {
    // serde's own message could quote the value; say only what is missing.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "is not JSON".to_owned())?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("has no `{name}` string (the RDS secret format)"))
    };
    Ok(Credentials {
        username: field("username")?,
        password: field("password")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_format_secrets_parse_and_never_show_the_password() {
        let c = parse(r#"{"engine":"postgres","username":"backup","password":"s3cr3t!","host":"h","port":5432}"#)
            .expect("parses");
        assert_eq!(c.username, "backup");
        assert_eq!(c.password, "s3cr3t!");
        assert!(!format!("{c:?}").contains("s3cr3t!"));
        for (text, why) in [
            ("s3cr3t!", "is not JSON"),
            (r#"{"username":"backup"}"#, "no `password`"),
            (r#"{"password":"s3cr3t!"}"#, "no `username`"),
            (r#"{"username":"backup","password":""}"#, "no `password`"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(!err.contains("s3cr3t!"), "{err}");
        }
    }
}
