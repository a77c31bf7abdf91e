//! Printing an error with its causes.
//!
//! bosun's error messages carry only their own context ("cannot open the
//! manifest folder /srv/m") and return the cause from `source()`, so a chain
//! printed with anyhow's `{:#}` or [`chain`] names each cause exactly once.
//! Where an error becomes a string (status, a log field), it goes through
//! [`chain`], never `to_string()`, which would drop the causes.

use std::error::Error;

/// `err` and its causes, `": "`-separated: what `{:#}` prints for an
/// `anyhow::Error`.
#[must_use]
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the manifest folder /srv/m")]
    struct Open(#[source] std::io::Error);

    #[test]
    fn a_chain_names_each_cause_once() {
        let e = Open(std::io::Error::from_raw_os_error(2));
        let text = chain(&e);
        assert_eq!(
            text,
            "cannot open the manifest folder /srv/m: No such file or directory (os error 2)"
        );
        assert_eq!(text.matches("No such file").count(), 1);
        assert_eq!(text, format!("{:#}", anyhow::Error::new(e)));
    }
}
