//! The restore drill's throwaway server (`ScratchServer`) from the Lambda
//! layer, as Lambda runs it: as a uid that has no passwd entry, which `initdb`
//! and `postgres` refuse unless the server gives it one through the layer's
//! nss_wrapper. As root, the test runs itself again as such a uid (`setpriv`);
//! the layer is `make layer`'s zip, unpacked with the modes it records.

use lifeboat::postgres::server::ScratchServer;
use lifeboat_tests::{TempDir, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the run as the other uid: the directory it works in.
const CHILD: &str = "LIFEBOAT_SCRATCH_SERVER_CHILD";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The first uid from 993 (Lambda's) that neither `/etc/passwd` nor `/etc/group` knows.
fn uid_without_entry() -> u32 {
    let known = |file: &str, id: u32| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()))
    };
    (993..)
        .find(|id| !known("/etc/passwd", *id) && !known("/etc/group", *id))
        .expect("a free uid")
}

/// `make layer`'s zip unpacked into `into`, read-only as Lambda's /opt; its `pgsql/`.
fn unpack_layer(into: &Path, leave_out: Option<&str>) -> PathBuf {
    let zip = repo_root().join("target/lambda/pg-dump-layer.zip");
    assert!(
        zip.is_file(),
        "{} is missing: run make layer",
        zip.display()
    );
    let script = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        if info.filename == sys.argv[3]:
            continue
        path = z.extract(info, sys.argv[2])
        os.chmod(path, (info.external_attr >> 16) & 0o777)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&zip)
        .arg(into)
        .arg(leave_out.unwrap_or(""))
        .status()
        .expect("python3");
    assert!(status.success(), "unpacking {}", zip.display());
    let status = Command::new("chmod")
        .args(["-R", "a-w,a+rX"])
        .arg(into)
        .status()
        .expect("chmod");
    assert!(status.success());
    into.join("pgsql")
}

/// The name libtest knows a test of this module by: its path below the crate.
fn test_path(test: &str) -> String {
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_, module)| module);
    format!("{module}::{test}")
}

/// Runs this test again as `uid`, with an environment as bare as Lambda's;
/// its output, and whether it passed.
fn run_as(uid: u32, test: &str, work: &Path, layer: &Path) -> (bool, String) {
    // The test binary, where the other uid can run it.
    let exe = work.join("test-binary");
    std::fs::copy(std::env::current_exe().expect("this test's binary"), &exe).expect("copy");
    let chown = |path: &Path| {
        let ok = Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {}", path.display());
    };
    let scratch = work.join("scratch");
    std::fs::create_dir(&scratch).expect("scratch dir");
    chown(&scratch);
    let out = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(&exe)
        .args([
            "--exact",
            &test_path(test),
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TZ", ":UTC")
        .env(CHILD, &scratch)
        .env("LIFEBOAT_LAYER", layer)
        .output()
        .expect("setpriv");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// As the uid without an entry: start the layer's server, make 1000 rows,
/// count them, stop; the server's directory is gone after.
async fn child(scratch: PathBuf) {
    let bin = PathBuf::from(std::env::var("LIFEBOAT_LAYER").expect("LIFEBOAT_LAYER")).join("bin");
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uid = Command::new("id").arg("-u").output().expect("id").stdout;
    let uid = String::from_utf8_lossy(&uid).trim().to_owned();
    assert!(
        !passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(uid.as_str())),
        "uid {uid} has a passwd entry: the test would prove nothing"
    );
    let server = match ScratchServer::start(&bin, &scratch, 0).await {
        Ok(server) => server,
        Err(e) => panic!("START FAILED: {e}"),
    };
    assert_eq!(server.version, "18.6");
    let lifeboat::postgres::restore::Target::Conninfo(conninfo) = server.target("postgres") else {
        panic!("a throwaway server is reached by a conninfo");
    };
    let psql = |sql: &str| {
        let out = Command::new(bin.join("psql"))
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &conninfo,
                "-c",
                sql,
            ])
            .env_clear()
            .env("LD_LIBRARY_PATH", bin.parent().expect("pgsql").join("lib"))
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    psql(
        "CREATE TABLE drill AS SELECT i AS id, md5(i::text) AS digest FROM generate_series(1, 1000) AS i",
    );
    assert_eq!(psql("SELECT count(*) FROM drill"), "1000");
    // The settings Lambda needs: files for dynamic shared memory, and the server runs as this uid.
    assert_eq!(psql("SHOW dynamic_shared_memory_type"), "mmap");
    assert_eq!(psql("SELECT current_user"), "postgres");
    let dirs = |dir: &Path| std::fs::read_dir(dir).expect("scratch").count();
    assert_eq!(dirs(&scratch), 1, "the server's one directory");
    server.stop().await;
    assert_eq!(dirs(&scratch), 0, "stop removes the server's directory");
    println!("CHILD PASSED as uid {uid}");
}

#[tokio::test]
async fn the_layers_server_starts_as_a_uid_without_a_passwd_entry() {
    if let Ok(scratch) = std::env::var(CHILD) {
        return child(PathBuf::from(scratch)).await;
    }
    if !is_root() {
        eprintln!("skipped: running as another uid needs root (setpriv)");
        return;
    }
    let work = TempDir::new("scratch-server");
    let layer = unpack_layer(&work.path.join("opt"), None);
    let uid = uid_without_entry();
    let (passed, said) = run_as(
        uid,
        "the_layers_server_starts_as_a_uid_without_a_passwd_entry",
        &work.path,
        &layer,
    );
    assert!(
        passed && said.contains("CHILD PASSED"),
        "as uid {uid}: {said}"
    );
}

/// Without nss_wrapper in the layer, the server cannot start as such a uid,
/// and the error says why: the test above proves something.
#[tokio::test]
async fn without_nss_wrapper_the_server_refuses_and_says_why() {
    if std::env::var(CHILD).is_ok() {
        return child(PathBuf::from(std::env::var(CHILD).unwrap())).await;
    }
    if !is_root() {
        eprintln!("skipped: running as another uid needs root (setpriv)");
        return;
    }
    let work = TempDir::new("scratch-server-no-wrapper");
    let layer = unpack_layer(&work.path.join("opt"), Some("pgsql/lib/libnss_wrapper.so"));
    let uid = uid_without_entry();
    let (passed, said) = run_as(
        uid,
        "without_nss_wrapper_the_server_refuses_and_says_why",
        &work.path,
        &layer,
    );
    assert!(!passed, "started without nss_wrapper: {said}");
    assert!(
        said.contains("START FAILED: initdb failed")
            && said.contains(&format!("could not look up effective user ID {uid}"))
            && said.contains(&format!(
                "uid {uid} has no passwd entry and there is no libnss_wrapper.so"
            )),
        "{said}"
    );
}
