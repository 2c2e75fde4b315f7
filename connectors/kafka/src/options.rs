//! [`KafkaOptions`]: the pass-through map of other librdkafka options, with
//! the options that run commands or load code refused, and secrets kept out
//! of `Debug` output and logs.

use std::collections::BTreeMap;
use std::fmt;

use brook_core::{Error, Result};
use rdkafka::ClientConfig;

/// Options that run a command or load code into the process. A job's
/// configuration must never be a way to run a program.
const REFUSED: &[&str] = &[
    // Runs a shell command to refresh Kerberos tickets.
    "sasl.kerberos.kinit.cmd",
    // dlopen()s plugin libraries.
    "plugin.library.paths",
    // Loads an OpenSSL engine library, or picks one to load.
    "ssl.engine.location",
    "ssl.engine.id",
    // Loads OpenSSL 3 provider modules.
    "ssl.providers",
    // Set through librdkafka's C API only (callbacks, pointers).
    "interceptors",
    "opaque",
    "default_topic_conf",
    "ssl_engine_callback_data",
    "ssl_key",
    "ssl_certificate",
    "ssl_ca",
];

/// Options whose values are secrets: librdkafka's own sensitive options and
/// their aliases. Any option whose name holds one of [`SECRET_WORDS`] is a
/// secret too.
const SECRETS: &[&str] = &[
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "ssl.ca.pem",
];

/// Words that make an option a secret wherever they appear in its name.
const SECRET_WORDS: &[&str] = &[
    "password",
    "secret",
    "passphrase",
    "pem",
    "private",
    "token",
];

/// What [`Debug`](fmt::Debug) and logs show instead of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// Other librdkafka options, passed through as they are (see librdkafka's
/// `CONFIGURATION.md`). The typed settings of the source and sink are the
/// main interface; this map is for the rest (security, tuning).
///
/// Refused, with [`Error::Config`]: options that run commands or load code
/// (`sasl.kerberos.kinit.cmd` and any `*.cmd`, `plugin.library.paths`,
/// `ssl.engine.location`, `ssl.engine.id`, `ssl.providers`, callbacks),
/// and options a typed setting owns (set that instead).
///
/// Secrets (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`,
/// `sasl.oauthbearer.client.secret`, anything naming a password, secret,
/// passphrase, PEM, private key or token) never show in `Debug` output or
/// in Brook's logs.
///
/// ```
/// use brook_kafka::KafkaOptions;
///
/// let options = KafkaOptions::new()
///     .with("security.protocol", "sasl_plaintext")
///     .with("sasl.password", "hunter2");
/// assert!(!format!("{options:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KafkaOptions(BTreeMap<String, String>);

impl KafkaOptions {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The map with one more option.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets one option.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value of an option, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every option: refused ones, and ones in `owned` (set by a
    /// typed setting, named by the pair's second part).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad option (never its value).
    pub(crate) fn validate(&self, what: &str, owned: &[(&str, &str)]) -> Result<()> {
        for key in self.0.keys() {
            let k = key.trim().to_ascii_lowercase();
            if k.is_empty() {
                return Err(Error::Config(format!(
                    "{what}: an option has an empty name"
                )));
            }
            if REFUSED.contains(&k.as_str()) || k.ends_with(".cmd") || k.ends_with("_cb") {
                return Err(Error::Config(format!(
                    "{what}: the librdkafka option '{key}' is refused: it runs a command, \
                     loads code or is set through the C API"
                )));
            }
            if let Some((_, setting)) = owned.iter().find(|(o, _)| *o == k) {
                return Err(Error::Config(format!(
                    "{what}: set `{setting}` instead of the librdkafka option '{key}'"
                )));
            }
        }
        Ok(())
    }

    /// Copies every option into a librdkafka config.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        for (k, v) in &self.0 {
            config.set(k.trim(), v);
        }
    }
}

/// Whether an option's value is a secret.
pub(crate) fn is_secret(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    SECRETS.contains(&k.as_str()) || SECRET_WORDS.iter().any(|w| k.contains(w))
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown: &str = if is_secret(k) { REDACTED } else { v };
                (k, shown)
            }))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for KafkaOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        KafkaOptions(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_code_loading_are_refused() {
        for key in [
            "sasl.kerberos.kinit.cmd",
            "plugin.library.paths",
            "ssl.engine.location",
            "ssl.providers",
            "some.future.cmd",
            "dr_msg_cb",
            " Plugin.Library.Paths ",
        ] {
            let o = KafkaOptions::new().with(key, "x");
            let e = o.validate("kafka source", &[]).expect_err(key);
            assert!(matches!(e, Error::Config(_)), "{key}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
        let fine = KafkaOptions::new()
            .with("security.protocol", "ssl")
            .with("fetch.max.bytes", "1000000");
        fine.validate("kafka source", &[]).expect("fine");
    }

    #[test]
    fn owned_options_name_the_typed_setting() {
        let o = KafkaOptions::new().with("group.id", "g");
        let e = o
            .validate("kafka source", &[("group.id", "group_id")])
            .expect_err("owned");
        assert!(e.to_string().contains("`group_id`"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_errors() {
        let o = KafkaOptions::new()
            .with("sasl.password", "pw-1")
            .with("ssl.key.password", "pw-2")
            .with("ssl.keystore.password", "pw-3")
            .with("sasl.oauthbearer.client.secret", "pw-4")
            .with("sasl.oauthbearer.config", "principal=x secret=pw-5")
            .with("sasl.username", "pw-6")
            .with("client.id", "visible");
        let shown = format!("{o:?}");
        for n in 1..=6 {
            assert!(!shown.contains(&format!("pw-{n}")), "{shown}");
        }
        assert!(
            shown.contains("visible") && shown.contains(REDACTED),
            "{shown}"
        );
        let bad = o.clone().with("sasl.kerberos.kinit.cmd", "pw-7");
        let e = bad.validate("kafka source", &[]).expect_err("refused");
        assert!(!e.to_string().contains("pw-"), "{e}");
    }
}
