//! Starting and stopping a real `docker-registry`.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user name the htpasswd mode accepts.
pub const BASIC_USER: &str = "testuser";
/// The password the htpasswd mode accepts.
pub const BASIC_PASSWORD: &str = "registry-test-password";
/// bcrypt of [`BASIC_PASSWORD`] (cost 5, to keep tests fast); distribution accepts only bcrypt.
const BASIC_BCRYPT: &str = "$2b$05$WeRlJjCPPNYAPV4hnfoaweo2.XyVGX1JvJZ4WxtMBXjr./itam8KS";

/// How clients must authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication.
    #[default]
    Anonymous,
    /// htpasswd basic auth with [`BASIC_USER`] / [`BASIC_PASSWORD`].
    Basic,
    /// Distribution token auth: the registry challenges with `Bearer realm=…,service=…` and
    /// accepts JWTs signed by a key whose certificate is in the bundle. With the `server`
    /// feature, `TokenServer::registry_auth` and the ACR emulator fill this in.
    Token(TokenAuth),
}

/// The registry's `auth.token` settings (all four are required by docker-registry 2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuth {
    /// Where clients get tokens; sent back in the `WWW-Authenticate` challenge.
    pub realm: String,
    /// The `service` of the challenge; tokens must carry it as their `aud` (a JSON string).
    pub service: String,
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// PEM file with the certificate(s) whose keys may sign tokens.
    pub root_cert_bundle: PathBuf,
}

/// How to start the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Authentication mode.
    pub auth: Auth,
    /// Serve HTTPS with a certificate from a fresh test CA (see [`Registry::ca_file`]).
    pub tls: bool,
    /// Storage directory; a fresh temporary one when `None`. Kept when given.
    pub storage: Option<PathBuf>,
    /// Port on 127.0.0.1; a free one when `None`.
    pub port: Option<u16>,
}

/// Why the registry could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `docker-registry` is not installed and could not be installed.
    NotInstalled(String),
    /// A file or process operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The registry did not answer in time.
    NotReady {
        /// Where it was expected.
        addr: SocketAddr,
        /// The end of its log.
        log: String,
    },
    /// `openssl` failed while making test certificates.
    Certificates(String),
    /// The token server or ACR emulator could not be set up.
    Server(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled(why) => write!(f, "docker-registry is not available: {why}"),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::NotReady { addr, log } => {
                write!(
                    f,
                    "docker-registry did not answer on {addr} within 20 s; its log ends with:\n{log}"
                )
            }
            Self::Certificates(why) => write!(f, "making test certificates failed: {why}"),
            Self::Server(why) => write!(f, "starting the test server failed: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Finds `docker-registry`, installing Debian's package with apt-get when running as root.
pub fn ensure_docker_registry() -> Result<PathBuf, Error> {
    if let Some(path) = find_binary() {
        return Ok(path);
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        return Err(Error::NotInstalled(
            "install it with `sudo apt-get install docker-registry`".into(),
        ));
    }
    eprintln!("installing Debian's docker-registry with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-q", "docker-registry"]) {
        apt(&["update", "-q"]);
        if !apt(&["install", "-y", "-q", "docker-registry"]) {
            return Err(Error::NotInstalled(
                "`apt-get install docker-registry` failed".into(),
            ));
        }
    }
    // The package starts a system service on :5000; tests run their own instances.
    let _ = Command::new("service")
        .args(["docker-registry", "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    find_binary().ok_or_else(|| Error::NotInstalled("installed, but not found on PATH".into()))
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("docker-registry"))
        .find(|p| p.is_file())
}

/// A running `docker-registry`, stopped (and its temporary storage removed) on drop.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    remove_dir: bool,
    tls: bool,
    auth: Auth,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .finish()
    }
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers.
    pub fn start(options: RegistryOptions) -> Result<Self, Error> {
        let binary = ensure_docker_registry()?;
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = unique_temp_dir("acr-testkit-registry")?;
        let storage = options
            .storage
            .clone()
            .unwrap_or_else(|| dir.join("storage"));
        std::fs::create_dir_all(&storage)
            .map_err(io_err(format!("creating {}", storage.display())))?;

        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: acr-testkit-secret\n",
            storage.display()
        );
        if options.tls {
            make_certificates(&dir)?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            ));
        }
        match &options.auth {
            Auth::Anonymous => {}
            Auth::Basic => {
                let htpasswd = dir.join("htpasswd");
                std::fs::write(&htpasswd, format!("{BASIC_USER}:{BASIC_BCRYPT}\n"))
                    .map_err(io_err("writing htpasswd"))?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: acr-testkit\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            Auth::Token(token) => {
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    yaml_string(&token.realm),
                    yaml_string(&token.service),
                    yaml_string(&token.issuer),
                    yaml_string(&token.root_cert_bundle.to_string_lossy()),
                ));
            }
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).map_err(io_err("writing registry config"))?;
        let log = std::fs::File::create(dir.join("registry.log"))
            .map_err(io_err("creating registry log"))?;
        let log2 = log.try_clone().map_err(io_err("creating registry log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io_err("starting docker-registry"))?;
        let mut registry = Self {
            child,
            addr,
            dir,
            remove_dir: true,
            tls: options.tls,
            auth: options.auth.clone(),
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if self.answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::NotReady {
            addr: self.addr,
            log: self.log_tail(),
        })
    }

    /// Whether something answers HTTP (or, in TLS mode, accepts connections) on the port.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
        else {
            return false;
        };
        if self.tls {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
    }

    /// The last lines of the registry's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `127.0.0.1:<port>`, what goes before the repository in a reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` or `https://…` in TLS mode.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM file of the test CA that signed the server certificate (TLS mode only).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.join("ca.crt"))
    }

    /// The authentication mode.
    pub fn auth(&self) -> Auth {
        self.auth.clone()
    }

    /// Leaves the registry running after this value is dropped (for `cargo xtask registry up`);
    /// returns its process id and working directory.
    pub fn detach(mut self) -> (u32, PathBuf) {
        self.remove_dir = false;
        let pid = self.child.id();
        let dir = self.dir.clone();
        std::mem::forget(self);
        (pid, dir)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("finding a free port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(io_err("finding a free port"))
}

pub(crate) fn unique_temp_dir(prefix: &str) -> Result<PathBuf, Error> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// A double-quoted YAML scalar (service names like `127.0.0.1:5000` and URLs contain `:`).
fn yaml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A CA (CA:TRUE) and a server certificate for 127.0.0.1 and localhost signed by it
/// (serverAuth, not a CA), which is what rustls/webpki accept.
pub(crate) fn make_certificates(dir: &Path) -> Result<(), Error> {
    let openssl = |args: &[&str]| -> Result<(), Error> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| Error::Certificates(format!("running openssl: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Certificates(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    };
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(io_err("writing certificate extensions"))?;
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=acr-testkit CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])
}
