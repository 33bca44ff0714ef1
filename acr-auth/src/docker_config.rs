//! Docker's `config.json`: `auths` entries, `credsStore` and `credHelpers` through the docker
//! credential-helper protocol (`docker-credential-<name> get|store|erase` over stdin/stdout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::{AuthError, Secret};

/// The user name credential helpers use to say "the secret is an identity (refresh) token".
const TOKEN_USERNAME: &str = "<token>";

/// A credential found in (or to be stored in) the docker configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredCredential {
    /// A user name and password (ACR admin user, repository-scoped token, htpasswd).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An identity token: for ACR, a refresh token (what `az acr login --expose-token` gives).
    IdentityToken(Secret),
}

/// Where a credential came from, so errors can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// The `auths` section of the file.
    File(PathBuf),
    /// A credential helper program.
    Helper(String),
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Helper(name) => write!(f, "docker-credential-{name}"),
        }
    }
}

/// A docker `config.json`, with every field it does not use kept as is when written back.
///
/// ```
/// use acr_auth::{DockerConfig, StoredCredential, Secret};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("config.json");
/// let mut config = DockerConfig::load(&path)?;
/// config.store("myregistry.azurecr.io", &StoredCredential::Basic {
///     username: "user".into(),
///     password: Secret::new("pw"),
/// })?;
/// let again = DockerConfig::load(&path)?;
/// assert!(again.lookup("myregistry.azurecr.io")?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    root: Map<String, Value>,
    helper_dirs: Option<Vec<PathBuf>>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
    }

    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let root = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(config_error(path, "the top level is not a JSON object")),
                Err(e) => return Err(config_error(path, &e.to_string())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(config_error(path, &e.to_string())),
        };
        Ok(Self {
            path: path.to_owned(),
            root,
            helper_dirs: None,
        })
    }

    /// Looks for `docker-credential-*` programs in these folders instead of `PATH`.
    pub fn set_helper_dirs(&mut self, dirs: Vec<PathBuf>) {
        self.helper_dirs = Some(dirs);
    }

    fn helper(&self, name: &str) -> Helper {
        let program = format!("docker-credential-{name}");
        let path = match &self.helper_dirs {
            Some(dirs) => dirs
                .iter()
                .map(|d| d.join(&program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(&program)),
            None => PathBuf::from(&program),
        };
        Helper {
            name: name.to_owned(),
            program: path,
        }
    }

    /// The file this configuration belongs to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper that holds credentials for `registry`: `credHelpers[registry]`, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        let key = server_key(registry);
        self.root
            .get("credHelpers")
            .and_then(|h| h.get(&key).or_else(|| h.get(registry)))
            .or_else(|| self.root.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
    }

    /// The credential for `registry`, looked up as docker does: `credHelpers`, then
    /// `credsStore`, then the plain-text `auths`.
    pub fn lookup(
        &self,
        registry: &str,
    ) -> Result<Option<(StoredCredential, CredentialSource)>, AuthError> {
        if let Some(helper) = self.helper_for(registry) {
            let found = self.helper(helper).get(&server_key(registry))?;
            return Ok(found.map(|c| (c, CredentialSource::Helper(helper.to_owned()))));
        }
        Ok(self
            .lookup_file(registry)?
            .map(|c| (c, CredentialSource::File(self.path.clone()))))
    }

    /// Only the plain-text `auths` entry for `registry` (what to fall back on when a configured
    /// helper is broken).
    pub fn lookup_file(&self, registry: &str) -> Result<Option<StoredCredential>, AuthError> {
        let Some(auths) = self.root.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let wanted = server_key(registry);
        let Some(entry) = auths
            .iter()
            .find(|(key, _)| server_key(key) == wanted)
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(StoredCredential::IdentityToken(Secret::new(token))));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    config_error(
                        &self.path,
                        &format!("`auths.{wanted}.auth` is not base64 of user:password"),
                    )
                })?;
            let Some((username, password)) = decoded.split_once(':') else {
                return Err(config_error(
                    &self.path,
                    &format!("`auths.{wanted}.auth` has no `:` between user and password"),
                ));
            };
            return Ok(Some(StoredCredential::Basic {
                username: username.to_owned(),
                password: Secret::new(password),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(username), Some(password)) => Ok(Some(StoredCredential::Basic {
                username: username.to_owned(),
                password: Secret::new(password),
            })),
            _ => Ok(None),
        }
    }

    /// Stores a credential: through the registry's helper when one is configured, else in
    /// `auths` (the file is written atomically with mode 0600).
    pub fn store(
        &mut self,
        registry: &str,
        credential: &StoredCredential,
    ) -> Result<CredentialSource, AuthError> {
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(registry).map(str::to_owned) {
            let (username, secret) = match credential {
                StoredCredential::Basic { username, password } => {
                    (username.as_str(), password.expose())
                }
                StoredCredential::IdentityToken(token) => (TOKEN_USERNAME, token.expose()),
            };
            let input =
                serde_json::json!({ "ServerURL": key, "Username": username, "Secret": secret });
            self.helper(&helper).run("store", &input.to_string())?;
            return Ok(CredentialSource::Helper(helper));
        }
        self.store_file(registry, credential)?;
        Ok(CredentialSource::File(self.path.clone()))
    }

    /// Stores a credential in the plain-text `auths` section, whatever helpers say.
    pub fn store_file(
        &mut self,
        registry: &str,
        credential: &StoredCredential,
    ) -> Result<(), AuthError> {
        let key = server_key(registry);
        let entry = match credential {
            StoredCredential::Basic { username, password } => {
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                serde_json::json!({ "auth": auth })
            }
            StoredCredential::IdentityToken(token) => {
                let auth =
                    base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USERNAME}:"));
                serde_json::json!({ "auth": auth, "identitytoken": token.expose() })
            }
        };
        let auths = self
            .root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            auths.retain(|k, _| server_key(k) != key);
            auths.insert(key, entry);
        }
        self.save()
    }

    /// Removes the credential for `registry` from its helper, or from `auths`. Returns whether
    /// there was one.
    pub fn erase(&mut self, registry: &str) -> Result<bool, AuthError> {
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(registry).map(str::to_owned) {
            return match self.helper(&helper).run("erase", &key) {
                Ok(_) => Ok(true),
                Err(AuthError::CredentialHelper { message, .. }) if is_not_found(&message) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        }
        let removed = match self.root.get_mut("auths").and_then(Value::as_object_mut) {
            Some(auths) => {
                let before = auths.len();
                auths.retain(|k, _| server_key(k) != key);
                before != auths.len()
            }
            None => false,
        };
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    /// Writes the file atomically (temporary file in the same folder, then rename), mode 0600.
    fn save(&self) -> Result<(), AuthError> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| config_error(&self.path, &e.to_string()))?;
        let text = serde_json::to_string_pretty(&self.root)
            .map_err(|e| config_error(&self.path, &e.to_string()))?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            config_error(&self.path, &e.to_string())
        })
    }
}

/// The key docker uses for a registry: the host, except Docker Hub's historical URL.
fn server_key(registry: &str) -> String {
    let host = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_owned()
        }
        _ => host,
    }
}

fn config_error(path: &Path, message: &str) -> AuthError {
    AuthError::DockerConfig {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

/// A credential helper program.
struct Helper {
    name: String,
    program: PathBuf,
}

impl Helper {
    fn get(&self, server: &str) -> Result<Option<StoredCredential>, AuthError> {
        let output = match self.run("get", server) {
            Ok(output) => output,
            Err(AuthError::CredentialHelper { message, .. }) if is_not_found(&message) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let value: Value =
            serde_json::from_str(&output).map_err(|e| AuthError::CredentialHelper {
                helper: self.name.clone(),
                message: format!("`get` printed something that is not JSON: {e}"),
            })?;
        let username = value
            .get("Username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = value
            .get("Secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if username == TOKEN_USERNAME {
            StoredCredential::IdentityToken(Secret::new(secret))
        } else {
            StoredCredential::Basic {
                username: username.to_owned(),
                password: Secret::new(secret),
            }
        }))
    }

    /// Runs `docker-credential-<name> <action>` with `input` on stdin; returns its stdout.
    fn run(&self, action: &str, input: &str) -> Result<String, AuthError> {
        let helper = &self.name;
        let program = format!("docker-credential-{helper}");
        let fail = |message: String| AuthError::CredentialHelper {
            helper: helper.clone(),
            message,
        };
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    fail(format!(
                        "{program} is not installed (not on PATH); install it, or remove \"{helper}\" from credsStore/credHelpers in the docker config"
                    ))
                } else {
                    fail(format!("cannot run {program}: {e}"))
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is judged by its exit status below.
            let _ = stdin.write_all(input.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|e| fail(format!("{program} failed: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            // Helpers print their error on stdout (e.g. "credentials not found in native keychain").
            let said = if stdout.is_empty() { stderr } else { stdout };
            Err(fail(format!(
                "{program} {action} failed ({}): {said}",
                output.status
            )))
        }
    }
}
