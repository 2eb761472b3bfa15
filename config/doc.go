// Package config loads the agent's configuration file, alumet-config.toml,
// with the rules of Alumet's agent (shared/spec/alumet-compat.md §4), and
// provides humantime durations (Duration, ParseDuration, FormatDuration).
//
// Load does, in order:
//
//  1. resolve the path: Options.Path (--config), else $ALUMET_CONFIG, else
//     ./alumet-config.toml;
//  2. read the file, or, when it is missing and NoDefaultConfig is not set,
//     generate the default sections of the enabled plugins (all of them, or
//     the --plugins list, in registration order), write them to the path and
//     log `Default configuration file written to: <path>`;
//  3. substitute ${NAME} on the raw text, comments included (`\${` is a
//     literal `${`);
//  4. reject a text (file or override) nested deeper than MaxNesting, in
//     one linear pass, before the TOML decoder (whose work grows with the
//     square of the depth) sees it;
//  5. parse the TOML and deep-merge each --config-override, then
//     --output-file as plugins.csv.output_path (overrides are not
//     substituted; a table merges into a table, any other value replaces);
//  6. type-check the general keys (unknown top-level keys only warn);
//  7. decide the enabled plugins (a section enables its plugin unless
//     enabled/enable = false; --plugins replaces that rule), reject unknown
//     sections, and error on enabled sections of plugins only Alumet has;
//  8. decode each enabled plugin's table over its DefaultConfig (missing keys
//     keep their defaults, unknown keys are errors) and call Validate.
//
// Errors are *Error values pointing at the file and line of the key concerned
// (or at the flag that set it), never quote the value of a secret key
// (IsSecretKey), and go through redact.String (URL passwords, Authorization
// values, registered secrets). The values of secret keys are registered
// with redact.Register when a section is decoded.
//
// Decisions beyond the specification:
//   - With --plugins, sections of plugins that are not listed are only checked
//     for syntax, for being tables and for a boolean enabled key: their other
//     values are not decoded, so a disabled plugin's bad values never fail the
//     load. The same holds without --plugins for sections with enabled = false.
//   - An unknown section is an error even when it says enabled = false, and
//     even with --plugins: it is almost always a typo.
//   - A section of an Alumet-only plugin (AlumetOnlyPlugins) that --plugins
//     lists only gives Alumet's "Plugin X is not available" ERROR log.
//   - enabled and enable may both appear; the plugin is on only if neither is
//     false.
//   - Keys of tagged struct fields are case-sensitive, as with serde in
//     Alumet; a TOML array or table given for a slice or map field replaces
//     the default value, while a table given for a struct field is merged
//     key by key into the default struct.
//   - max_update_interval and shutdown_timeout must be greater than zero
//     and at most 1h (MaxGeneralDuration); source_channel_size must be
//     between 1 and 2^31-1. A plugin bounds its duration keys with the
//     DurationTag struct tag.
//   - Columns in TOML syntax errors refer to the text after ${VAR}
//     substitution; lines always refer to the file.
//   - Substituted values of 3 bytes or more are removed from TOML syntax
//     error messages, in case one is a password that broke the syntax.
package config
