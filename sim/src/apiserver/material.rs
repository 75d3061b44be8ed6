//! What a server starts with: identity names checked, random tokens, the TLS material made
//! with `openssl`, and the kubeconfig text.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{ADMIN, ApiServerError, io};

pub(super) fn valid_identity(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name != ADMIN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

pub(super) fn random_token() -> Result<String, ApiServerError> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io("/dev/urandom"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn openssl(step: &'static str, args: &[&str], cwd: &Path) -> Result<(), ApiServerError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(io("running openssl (apt-get install openssl)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ApiServerError::Openssl {
            step,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Makes `ca.crt`, `serving.crt`/`serving.key` (SAN 127.0.0.1, `address`, the `kubernetes`
/// Service's 10.0.0.1, localhost) and `sa.key`/`sa.pub` (kube-apiserver 1.20 reads no public key
/// out of a PKCS#8 private key file) in `dir`.
pub(super) fn make_tls(dir: &Path, address: IpAddr) -> Result<(), ApiServerError> {
    let ec = [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
    ];
    for key in ["ca.key", "serving.key", "sa.key"] {
        let mut args = ec.to_vec();
        args.push(key);
        openssl("genpkey", &args, dir)?;
    }
    openssl(
        "pkey (sa.pub)",
        &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        dir,
    )?;
    openssl(
        "req (CA)",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=forge-sim-ca",
            "-days",
            "3650",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    )?;
    openssl(
        "req (serving)",
        &[
            "req",
            "-new",
            "-key",
            "serving.key",
            "-subj",
            "/CN=kube-apiserver",
            "-out",
            "serving.csr",
        ],
        dir,
    )?;
    std::fs::write(
        dir.join("serving.ext"),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,IP:{address},IP:10.0.0.1,DNS:localhost,DNS:kubernetes,\
             DNS:kubernetes.default.svc\n"
        ),
    )
    .map_err(io("writing serving.ext"))?;
    openssl(
        "x509 (serving)",
        &[
            "x509",
            "-req",
            "-in",
            "serving.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "serving.ext",
            "-out",
            "serving.crt",
        ],
        dir,
    )
}

/// The text of a kubeconfig for `user` with `token` against `server`, trusting `ca`.
pub(super) fn kubeconfig_text(server: &str, ca: &Path, user: &str, token: &str) -> String {
    // JSON strings are valid YAML scalars: quoting without a YAML writer.
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: forge-sim\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: \
         {ctx}\n  context:\n    cluster: forge-sim\n    user: {user}\n    namespace: default\ncurrent-context: {ctx}\n",
        server = q(server),
        ca = q(&ca.to_string_lossy()),
        user = q(user),
        token = q(token),
        ctx = q(&format!("{user}@forge-sim")),
    )
}
