//! TLS scans of vigie's HTTPS listener, and of Debian's nginx with its default TLS settings
//! and the same certificate: `testssl.sh` (must be installed: `make deps`), `sslyze` (PyPI;
//! skipped with a note when absent) and `openssl s_client -tls1` / `-tls1_1`.
//!
//! Expectation for vigie: no HIGH or CRITICAL testssl finding beyond those a private test CA
//! produces (listed by id in [`PRIVATE_CA`]), no SSL 2/3 or TLS 1.0/1.1 suite accepted, not
//! vulnerable to Heartbleed, CCS injection, ROBOT, compression (CRIME) or client renegotiation,
//! and sslyze's Mozilla "intermediate" check failing only on the certificate's trust.

use std::process::Command;

use crate::support::attack::Table;
use crate::support::nginx::{self, Nginx};
use crate::support::tls::TestCa;
use crate::support::{Origin, Vigie};

/// Cases vigie fails today because of a defect another change fixes (none: BREACH, which
/// compression of proxied responses could cause, is not reported on the scanned page).
const EXPECTED_TO_CHANGE: &[&str] = &[];

/// testssl findings a certificate from a private test CA produces by design.
const PRIVATE_CA: &[&str] = &[
    "cert_chain_of_trust",
    "cert_trust",
    "cert_revocation",
    "cert_ocspURL",
    "cert_crlDistributionPoints",
    "cert_certificateTransparency",
    "cert_expirationStatus",
    "cert_notAfter",
    "cert_validityPeriod",
    "OCSP_stapling",
    "DNS_CAArecord",
];

const HOST: &str = "adv.test";

/// A testssl finding: severity, id, text.
type Finding = (String, String, String);

/// The page testssl's HTTP checks (BREACH, headers) fetch: a proxied, compressible 4 KiB
/// HTML response.
const PAGE: &str = "/body?kb=4&ct=text%2Fhtml";

fn vigie_config(cert: &str, key: &str, origin: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[log]
access = "off"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["{HOST}"]
tls = {{ cert = "{cert}", key = "{key}" }}
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#
    )
}

fn nginx_config(cert: &str, key: &str, origin: &str) -> String {
    format!(
        "upstream app {{ server {origin}; }}\nserver {{\n listen {{h1}};\n listen {{h2c}} http2;\n listen {{https}} ssl http2;\n \
         server_name {HOST};\n ssl_certificate {cert};\n ssl_certificate_key {key};\n \
         location / {{ proxy_pass http://app; }}\n}}\n"
    )
}

/// Run testssl on `addr`; the findings (severity, id, finding).
fn testssl(addr: &str, dir: &std::path::Path) -> Result<Vec<Finding>, String> {
    let out = dir.join("testssl.json");
    let _ = std::fs::remove_file(&out);
    let port = addr.rsplit(':').next().unwrap_or_default();
    let run = Command::new("testssl")
        .args(["--quiet", "--color", "0", "--fast", "--ip", "127.0.0.1"])
        .args(["--nodns", "none", "--jsonfile"])
        .arg(&out)
        .arg(format!("https://{HOST}:{port}{PAGE}"))
        .output()
        .map_err(|e| format!("cannot run testssl (apt-get install testssl.sh): {e}"))?;
    let text = std::fs::read_to_string(&out).map_err(|e| {
        format!(
            "testssl wrote no JSON ({e}): {}",
            String::from_utf8_lossy(&run.stdout)
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let field = |f: &serde_json::Value, k: &str| f[k].as_str().unwrap_or_default().to_string();
    Ok(json
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| (field(f, "severity"), field(f, "id"), field(f, "finding")))
                .collect()
        })
        .unwrap_or_default())
}

/// The HIGH/CRITICAL findings not explained by the private CA, as text.
fn serious(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|(sev, id, _)| {
            (sev == "HIGH" || sev == "CRITICAL") && !PRIVATE_CA.contains(&id.as_str())
        })
        .map(|(sev, id, f)| format!("{sev} {id}: {f}"))
        .collect()
}

fn finding<'a>(findings: &'a [Finding], id: &str) -> Option<&'a Finding> {
    findings.iter().find(|(_, i, _)| i == id)
}

/// sslyze's verdicts: (one-line summary, whether all were good), or None when absent.
fn sslyze(addr: &str, dir: &std::path::Path) -> Option<(String, bool)> {
    let out = dir.join("sslyze.json");
    let run = Command::new("python3")
        .args(["-m", "sslyze", "--mozilla_config", "intermediate"])
        .arg(format!("--json_out={}", out.display()))
        .arg(addr)
        .output()
        .ok()?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).ok()?).ok()?;
    let r = &json["server_scan_results"][0]["scan_result"];
    let accepted = |k: &str| {
        r[k]["result"]["accepted_cipher_suites"]
            .as_array()
            .map_or(0, |a| a.len())
    };
    let old: usize = ["ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"]
        .iter()
        .map(|v| accepted(&format!("{v}_cipher_suites")))
        .sum();
    let vulnerable = [
        r["heartbleed"]["result"]["is_vulnerable_to_heartbleed"].as_bool(),
        r["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"].as_bool(),
        r["tls_compression"]["result"]["supports_compression"].as_bool(),
        r["session_renegotiation"]["result"]["is_vulnerable_to_client_renegotiation_dos"].as_bool(),
    ]
    .iter()
    .filter(|v| **v != Some(false))
    .count();
    let robot = r["robot"]["result"]["robot_result"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let robot_ok = robot.starts_with("NOT_VULNERABLE");
    // The compliance check prints one "* name: why" line per failed requirement.
    let stdout = String::from_utf8_lossy(&run.stdout);
    let compliance = stdout
        .split_once("COMPLIANCE AGAINST")
        .map_or("", |(_, rest)| rest);
    let failures: Vec<&str> = compliance
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("* "))
        .filter(|l| !l.starts_with("certificate_") && !l.starts_with("maximum_certificate_"))
        .collect();
    let mozilla = if stdout.contains("OK - Compliant") {
        "Mozilla intermediate: compliant".to_string()
    } else if failures.is_empty() {
        "Mozilla intermediate: only the test certificate fails (trust, lifespan)".to_string()
    } else {
        format!("Mozilla intermediate fails: {}", failures.join("; "))
    };
    let text = format!(
        "{} TLS 1.0/1.1/SSL suites accepted, {} of Heartbleed/CCS/compression/renegotiation DoS, ROBOT {robot}; {mozilla}",
        old, vulnerable
    );
    Some((
        text,
        old == 0 && vulnerable == 0 && robot_ok && failures.is_empty(),
    ))
}

/// Whether `openssl s_client -FLAG` completes a handshake (the client allowed to go as low
/// as it can, so a refusal is the server's).
fn old_version_accepted(addr: &str, flag: &str) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            flag,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-connect",
            addr,
        ])
        .args(["-servername", HOST])
        .stdin(std::process::Stdio::null())
        .output();
    out.is_ok_and(|o| {
        let text = String::from_utf8_lossy(&o.stdout);
        o.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
    })
}

fn versions(addr: &str) -> (String, bool) {
    let t10 = old_version_accepted(addr, "-tls1");
    let t11 = old_version_accepted(addr, "-tls1_1");
    let word = |a: bool| if a { "accepted" } else { "refused" };
    (
        format!("TLS 1.0 {}, TLS 1.1 {}", word(t10), word(t11)),
        !t10 && !t11,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_scans_side_by_side() {
    let ca = TestCa::new("vigie adversarial test CA");
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = ca.write_leaf(files.path(), "adv", &[HOST]);
    let origin = Origin::start("tls").await;
    let o = origin.addr_str();
    let v = Vigie::start(&vigie_config(&cert, &key, &o)).await;
    let n = if nginx::available() {
        Some(Nginx::start_tuned(&nginx_config(&cert, &key, &o)).await)
    } else {
        None
    };
    let table = Table::new("tls_scan", "TLS scans", EXPECTED_TO_CHANGE);

    // testssl takes about a minute: scan both at once.
    let (vdir, ndir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (va, na) = (v.https.clone(), n.as_ref().map(|n| n.https.clone()));
    let (vp, np) = (vdir.path().to_path_buf(), ndir.path().to_path_buf());
    let vt = tokio::task::spawn_blocking(move || testssl(&va, &vp));
    let nt = tokio::task::spawn_blocking(move || na.map(|a| testssl(&a, &np)));
    let vfind = vt.await.unwrap().expect("testssl against vigie");
    let nfind = nt.await.unwrap();
    let nfind = nfind.as_ref().map(|r| r.as_ref().map_err(|e| e.clone()));

    let serious_text = |f: &[Finding]| {
        let s = serious(f);
        if s.is_empty() {
            "none".to_string()
        } else {
            s.join("; ")
        }
    };
    let n_text = |f: &dyn Fn(&[Finding]) -> String| match &nfind {
        Some(Ok(found)) => f(found),
        Some(Err(e)) => format!("testssl failed: {e}"),
        None => "nginx not installed".into(),
    };
    let vs = serious(&vfind);
    // BREACH has its own row (expected to change); the rest must be clean.
    let vs_other: Vec<&String> = vs.iter().filter(|s| !s.contains(" BREACH:")).collect();
    table.row(
        "tls_testssl",
        "testssl.sh --fast: HIGH/CRITICAL findings beyond a private CA's",
        serious_text(&vfind),
        n_text(&serious_text),
        vs_other.is_empty(),
    );
    let breach = |f: &[Finding]| {
        finding(f, "BREACH").map_or("not reported".into(), |(s, _, t)| format!("{s}: {t}"))
    };
    let vb = finding(&vfind, "BREACH");
    table.row(
        "tls_breach",
        "BREACH (HTTP compression over TLS)",
        breach(&vfind),
        n_text(&breach),
        vb.is_none_or(|(s, _, _)| s == "OK" || s == "INFO"),
    );
    let private: Vec<String> = vfind
        .iter()
        .filter(|(s, id, _)| (s == "HIGH" || s == "CRITICAL") && PRIVATE_CA.contains(&id.as_str()))
        .map(|(s, id, _)| format!("{s} {id}"))
        .collect();
    println!("findings explained by the private CA: {private:?}");

    let (vv, vok) = versions(&v.https);
    let nv = n
        .as_ref()
        .map_or("nginx not installed".into(), |n| versions(&n.https).0);
    table.row(
        "tls_old_versions",
        "openssl s_client -tls1 / -tls1_1",
        vv,
        nv,
        vok,
    );

    match sslyze(&v.https, vdir.path()) {
        Some((text, ok)) => {
            let nt = n
                .as_ref()
                .and_then(|n| sslyze(&n.https, ndir.path()))
                .map_or("not run".into(), |(t, _)| t);
            table.row("tls_sslyze", "sslyze", text, nt, ok);
        }
        None => println!("sslyze is not installed (pip install sslyze): skipped"),
    }
    table.finish();
}
