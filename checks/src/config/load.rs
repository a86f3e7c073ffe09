//! Loading: files and directories of `*.yaml` into located YAML trees, then into a validated [`Config`].

use std::path::{Path as FsPath, PathBuf};

use super::validate::validate_collecting_secrets;
use super::{Config, ConfigError, ConfigErrors, validate};
use crate::wire::ConfigFile;
use crate::yaml::{self, Node};

/// Files larger than this are refused before parsing.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// One parsed file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file as the user named it (used in error messages).
    pub name: String,
    /// Its YAML tree.
    pub root: Node,
}

/// Parses and validates one config held in memory; `name` is used in error messages.
pub fn load_str(name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let file = parse_file(name, text).map_err(|error| ConfigErrors(vec![error]))?;
    validate(&[file])
}

/// Loads files and directories (every `*.yaml` and `*.yml` inside, in name order, recursively) as one config.
/// Every error of every file is reported; a config with any error is rejected whole.
pub fn load_paths(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    load(paths, false)
}

/// Like [`load_paths`], and also reports every `${env:..}` / `${file:..}` reference that does not resolve
/// on this machine, together with the other errors.
pub fn load_paths_checking_secrets(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    load(paths, true)
}

/// Reads the files a set of paths names (directories: every `*.yaml`/`*.yml` inside, recursively, in name
/// order) without validating them: what a scheduler hands its probers.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<ConfigFile>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut names = Vec::new();
    for path in paths {
        collect(path, &mut names, &mut errors);
    }
    if names.is_empty() && errors.is_empty() {
        errors.push(whole_file(&paths_label(paths), "no *.yaml or *.yml files found"));
    }
    let mut sources = Vec::new();
    for name in names {
        let label = name.display().to_string();
        match read(&name) {
            Ok(text) => sources.push(ConfigFile { name: label, text }),
            Err(message) => errors.push(whole_file(&label, &message)),
        }
    }
    if errors.is_empty() { Ok(sources) } else { Err(ConfigErrors(errors).sorted()) }
}

/// Parses and validates config files held in memory (as a prober receives them).
pub fn load_sources(sources: &[ConfigFile]) -> Result<Config, ConfigErrors> {
    validate_sources(sources, false)
}

fn load(paths: &[PathBuf], check_secrets: bool) -> Result<Config, ConfigErrors> {
    validate_sources(&read_sources(paths)?, check_secrets)
}

fn validate_sources(sources: &[ConfigFile], check_secrets: bool) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for source in sources {
        match parse_file(&source.name, &source.text) {
            Ok(file) => files.push(file),
            Err(error) => errors.push(error),
        }
    }
    let (result, secrets) = validate_collecting_secrets(&files);
    if check_secrets {
        for reference in secrets {
            if let Err(error) = reference.template.check_resolvable() {
                errors.push(ConfigError { message: error.0, ..reference.place });
            }
        }
    }
    match result {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(errors).sorted()),
        Err(mut more) => {
            errors.append(&mut more.0);
            Err(ConfigErrors(errors).sorted())
        }
    }
}

fn paths_label(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(" ")
}

fn whole_file(file: &str, message: &str) -> ConfigError {
    ConfigError { file: file.to_owned(), line: 0, col: 0, path: String::new(), message: message.to_owned() }
}

fn collect(path: &FsPath, out: &mut Vec<PathBuf>, errors: &mut Vec<ConfigError>) {
    let label = path.display().to_string();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => return errors.push(whole_file(&label, &io_message(&error))),
    };
    if !metadata.is_dir() {
        out.push(path.to_owned());
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) => return errors.push(whole_file(&label, &io_message(&error))),
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
    children.sort();
    for child in children {
        let is_yaml = child.extension().is_some_and(|ext| ext == "yaml" || ext == "yml");
        let hidden = child.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden || is_stack_file(&child) {
            continue;
        }
        if child.is_dir() {
            collect(&child, out, errors);
        } else if is_yaml {
            out.push(child);
        }
    }
}

/// Stack files (`stack.yaml`, `NAME.stack.yaml`) describe a deployment for `probenet install`; a directory of
/// configs may hold them, and they are not configs. Named on the command line, they are read like any file.
pub fn is_stack_file(path: &FsPath) -> bool {
    let name = path.file_name().map(|name| name.to_string_lossy().to_lowercase()).unwrap_or_default();
    ["stack.yaml", "stack.yml"].iter().any(|stack| name == *stack || name.ends_with(&format!(".{stack}")))
}

fn read(path: &FsPath) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|error| io_message(&error))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(format!("file is larger than {} MiB", MAX_FILE_BYTES >> 20));
    }
    let bytes = std::fs::read(path).map_err(|error| io_message(&error))?;
    String::from_utf8(bytes)
        .map_err(|error| format!("file is not UTF-8 (invalid byte at offset {})", error.utf8_error().valid_up_to()))
}

fn io_message(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

fn parse_file(name: &str, text: &str) -> Result<SourceFile, ConfigError> {
    yaml::parse(text).map(|root| SourceFile { name: name.to_owned(), root }).map_err(|error| ConfigError {
        file: name.to_owned(),
        line: error.mark.line,
        col: error.mark.col,
        path: String::new(),
        message: error.message,
    })
}
