//! The docker config and a real credential helper script written by the test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use acr_auth::{AuthError, CredentialSource, DockerConfig, Secret, StoredCredential};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn basic(user: &str, password: &str) -> StoredCredential {
    StoredCredential::Basic {
        username: user.into(),
        password: Secret::new(password),
    }
}

#[test]
fn reads_auths_entries_as_docker_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    // "dXNlcjpwYTpzcw==" is base64 of "user:pa:ss": the password may itself hold a colon.
    write(
        &path,
        r#"{
          "auths": {
            "https://myregistry.azurecr.io": {"auth": "dXNlcjpwYTpzcw=="},
            "other.azurecr.io": {"auth": "PHRva2VuPjo=", "identitytoken": "refresh-jwt"},
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="}
          }
        }"#,
    );
    let config = DockerConfig::load(&path).unwrap();
    let (found, source) = config.lookup("myregistry.azurecr.io").unwrap().unwrap();
    assert_eq!(found, basic("user", "pa:ss"));
    assert_eq!(source, CredentialSource::File(path.clone()));
    assert_eq!(
        config.lookup("other.azurecr.io").unwrap().unwrap().0,
        StoredCredential::IdentityToken(Secret::new("refresh-jwt"))
    );
    assert_eq!(
        config.lookup("docker.io").unwrap().unwrap().0,
        basic("hub", "secret")
    );
    assert_eq!(config.lookup("unknown.example.com").unwrap(), None);
}

#[test]
fn a_missing_file_is_empty_and_a_broken_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = DockerConfig::load(&dir.path().join("nope.json")).unwrap();
    assert_eq!(missing.lookup("r.io").unwrap(), None);

    let broken = dir.path().join("broken.json");
    write(&broken, "{\"auths\": ");
    let err = DockerConfig::load(&broken).unwrap_err();
    assert!(matches!(err, AuthError::DockerConfig { ref path, .. } if *path == broken));
    assert!(err.to_string().contains("broken.json"), "{err}");

    let bad_auth = dir.path().join("bad-auth.json");
    write(&bad_auth, r#"{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}"#); // "nocolon"
    let err = DockerConfig::load(&bad_auth)
        .unwrap()
        .lookup("r.io")
        .unwrap_err();
    assert!(err.to_string().contains("no `:`"), "{err}");
}

#[test]
fn store_keeps_other_fields_and_writes_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    write(
        &path,
        r#"{"psFormat":"table","auths":{"keep.io":{"auth":"YTpi"}}}"#,
    );
    let mut config = DockerConfig::load(&path).unwrap();
    let source = config
        .store("https://new.azurecr.io", &basic("u", "p"))
        .unwrap();
    assert_eq!(source, CredentialSource::File(path.clone()));

    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["psFormat"], "table");
    assert_eq!(json["auths"]["keep.io"]["auth"], "YTpi");
    assert_eq!(json["auths"]["new.azurecr.io"]["auth"], "dTpw");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    config
        .store(
            "new.azurecr.io",
            &StoredCredential::IdentityToken(Secret::new("rt")),
        )
        .unwrap();
    let again = DockerConfig::load(&path).unwrap();
    assert_eq!(
        again.lookup("new.azurecr.io").unwrap().unwrap().0,
        StoredCredential::IdentityToken(Secret::new("rt"))
    );

    let mut again = again;
    assert!(again.erase("new.azurecr.io").unwrap());
    assert!(!again.erase("new.azurecr.io").unwrap());
    assert_eq!(
        DockerConfig::load(&path)
            .unwrap()
            .lookup("new.azurecr.io")
            .unwrap(),
        None
    );
    assert!(
        DockerConfig::load(&path)
            .unwrap()
            .lookup("keep.io")
            .unwrap()
            .is_some()
    );
}

/// A credential helper that keeps its store in a JSON file next to itself, as real ones keep
/// theirs in a keychain.
fn install_helper(dir: &Path, name: &str) -> PathBuf {
    let store = dir.join(format!("{name}-store.json"));
    let script = dir.join(format!("docker-credential-{name}"));
    write(
        &script,
        &format!(
            r#"#!/usr/bin/env python3
import json, sys, os
store = {store:?}
data = json.load(open(store)) if os.path.exists(store) else {{}}
action, payload = sys.argv[1], sys.stdin.read()
if action == "get":
    server = payload.strip()
    if server not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({{"ServerURL": server, **data[server]}}))
elif action == "store":
    entry = json.loads(payload)
    data[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
    json.dump(data, open(store, "w"))
elif action == "erase":
    server = payload.strip()
    if server not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    del data[server]; json.dump(data, open(store, "w"))
"#
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    store
}

#[test]
fn credential_helpers_store_get_and_erase() {
    let dir = tempfile::tempdir().unwrap();
    let store = install_helper(dir.path(), "acrtest");
    let path = dir.path().join("config.json");
    write(
        &path,
        r#"{"credHelpers":{"myregistry.azurecr.io":"acrtest"},"auths":{"myregistry.azurecr.io":{"auth":"ZmlsZTpmaWxl"}}}"#,
    );
    let mut config = DockerConfig::load(&path).unwrap();
    config.set_helper_dirs(vec![dir.path().to_owned()]);

    // The helper wins over the file, and does not have it yet.
    assert_eq!(config.lookup("myregistry.azurecr.io").unwrap(), None);
    let source = config
        .store(
            "myregistry.azurecr.io",
            &StoredCredential::IdentityToken(Secret::new("refresh")),
        )
        .unwrap();
    assert_eq!(source, CredentialSource::Helper("acrtest".into()));
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(kept["myregistry.azurecr.io"]["Username"], "<token>");
    let (found, source) = config.lookup("myregistry.azurecr.io").unwrap().unwrap();
    assert_eq!(
        found,
        StoredCredential::IdentityToken(Secret::new("refresh"))
    );
    assert_eq!(source.to_string(), "docker-credential-acrtest");

    // Other registries still come from the file.
    assert!(config.lookup("elsewhere.io").unwrap().is_none());
    assert!(config.erase("myregistry.azurecr.io").unwrap());
    assert_eq!(config.lookup("myregistry.azurecr.io").unwrap(), None);
    assert!(!config.erase("myregistry.azurecr.io").unwrap());
}

#[test]
fn a_missing_helper_is_a_clear_error_and_the_file_remains_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    write(
        &path,
        r#"{"credsStore":"desktop","auths":{"r.io":{"auth":"dTpw"}}}"#,
    );
    let mut config = DockerConfig::load(&path).unwrap();
    config.set_helper_dirs(vec![dir.path().to_owned()]);
    let err = config.lookup("r.io").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("docker-credential-desktop is not installed"),
        "{message}"
    );
    assert!(message.contains("credsStore"), "{message}");
    assert_eq!(config.lookup_file("r.io").unwrap(), Some(basic("u", "p")));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let credential = basic("user", "hunter2-password");
    assert!(!format!("{credential:?}").contains("hunter2"));
    let token = StoredCredential::IdentityToken(Secret::new("eyJhbGciOi.secret"));
    assert!(!format!("{token:?}").contains("eyJ"));
}
