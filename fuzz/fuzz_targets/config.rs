//! The configuration loader: TOML text plus `HOOKPIPE_*__*` environment overrides. The input is
//! the TOML text, then a NUL byte, then override lines `SECTION__KEY=value` (the `HOOKPIPE_`
//! prefix is added). Invariants: loading never panics; an error names a key and says why; a
//! configuration that loads validates again, and every listener in it compiles (the server
//! builds its registry from it without an error).
#![no_main]

use hookpipe::config::Settings;
use hookpipe::pipeline::listener::Registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (toml, overrides) = match data.iter().position(|byte| *byte == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(toml) = std::str::from_utf8(toml) else { return };
    let overrides = String::from_utf8_lossy(overrides);
    let env: Vec<(String, String)> = overrides
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (format!("HOOKPIPE_{name}"), value.to_string()))
        .collect();
    match Settings::from_toml_and_env(toml, env) {
        Ok(settings) => {
            if let Err(errors) = settings.validate() {
                panic!("a loaded configuration does not validate: {errors}");
            }
            if let Err(error) = Registry::from_settings(&settings) {
                panic!("a loaded configuration has a listener that does not compile: {error}");
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without a problem");
            for error in &errors.0 {
                assert!(!error.key.is_empty(), "a problem without a key: {}", error.message);
                assert!(
                    !error.message.is_empty(),
                    "a problem without a message at {}",
                    error.key
                );
            }
            assert!(!errors.to_string().is_empty());
        }
    }
});
