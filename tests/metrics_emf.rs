//! The ECS task metadata path on loopback: a local server plays the v4
//! endpoint with the example documents; ward's client reads who the
//! container is, and the EMF line carries it. Also: a server that never
//! answers costs a timeout, not a hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use ward::metrics::ecs::{self, EXAMPLE_CONTAINER, EXAMPLE_TASK, MetadataError};
use ward::metrics::emf::{EmfContext, EmfInterval, render_emf};
use ward::metrics::view::MetricsView;

/// How the fake endpoint answers.
#[derive(Clone, Copy)]
enum Style {
    /// HTTP/1.1 with Content-Length.
    Length,
    /// HTTP/1.1 chunked, in small chunks (as Go's server does for large bodies).
    Chunked,
}

/// Serves `container` at `/v4/abc` and the task example at `/v4/abc/task`
/// for `n` requests; returns the base URL and the request paths seen.
fn fake_endpoint(
    container: &'static str,
    style: Style,
    n: usize,
) -> (String, JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v4/abc", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let k = s.read(&mut b).unwrap();
                assert!(k > 0);
                req.extend_from_slice(&b[..k]);
            }
            let req = String::from_utf8(req).unwrap();
            let path = req.split(' ').nth(1).unwrap().to_string();
            assert!(req.contains("\r\nHost: 127.0.0.1:"), "{req}");
            let body = match path.as_str() {
                "/v4/abc" => container,
                "/v4/abc/task" => EXAMPLE_TASK,
                _ => "",
            };
            seen.push(path);
            write_response(&mut s, body, style);
        }
        seen
    });
    (base, t)
}

fn write_response(s: &mut TcpStream, body: &str, style: Style) {
    let status = if body.is_empty() {
        "404 Not Found"
    } else {
        "200 OK"
    };
    match style {
        Style::Length => {
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        Style::Chunked => {
            let _ = write!(s, "HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n");
            for part in body.as_bytes().chunks(100) {
                let _ = write!(s, "{:x}\r\n", part.len());
                let _ = s.write_all(part);
                let _ = s.write_all(b"\r\n");
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
    }
}

#[test]
fn container_document_alone_names_everything() {
    let (base, t) = fake_endpoint(EXAMPLE_CONTAINER, Style::Length, 1);
    let id = ecs::fetch_identity(&base, ecs::FETCH_TIMEOUT).unwrap();
    assert_eq!(t.join().unwrap(), ["/v4/abc"]);
    assert_eq!(id.cluster.as_deref(), Some("default"));
    assert_eq!(id.family.as_deref(), Some("curltest"));
    assert_eq!(id.container.as_deref(), Some("curl"));

    let ctx = EmfContext::from_ecs(&id);
    let mut v = MetricsView::new();
    v.memory.working_set = Some(50);
    v.memory.limit = Some(100);
    let line = render_emf(
        &EmfInterval::default().step(&v, std::time::Instant::now()),
        &ctx,
        1000,
    );
    let j: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(j["ClusterName"], "default");
    assert_eq!(j["ContainerName"], "curl");
    assert_eq!(j["MemoryUtilization"], 50.0);
    assert!(
        j["TaskArn"]
            .as_str()
            .unwrap()
            .ends_with("8f03e41243824aea923aca126495f665")
    );
}

/// Fargate-style: the container document lacks the labels; the task
/// document (chunked) fills them in, and the container is found by DockerId.
#[test]
fn task_document_fills_what_the_container_lacks() {
    const BARE: &str =
        r#"{"DockerId": "e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603", "Name": "curl"}"#;
    let (base, t) = fake_endpoint(BARE, Style::Chunked, 2);
    let id = ecs::fetch_identity(&base, ecs::FETCH_TIMEOUT).unwrap();
    assert_eq!(t.join().unwrap(), ["/v4/abc", "/v4/abc/task"]);
    assert_eq!(id.cluster.as_deref(), Some("default"));
    assert_eq!(id.family.as_deref(), Some("curltest"));
    assert_eq!(id.container.as_deref(), Some("curl"));
    assert_eq!(
        id.task_arn.as_deref(),
        Some("arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3")
    );
}

#[test]
fn silent_server_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v4/abc", l.local_addr().unwrap());
    // Accepted by the kernel (backlog), never answered.
    let err = ecs::http_get(&url, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, MetadataError::Timeout(_)), "{err}");
    drop(l);
}

#[test]
fn error_status_and_refused_connection() {
    let (base, t) = fake_endpoint(EXAMPLE_CONTAINER, Style::Length, 1);
    let err = ecs::http_get(&format!("{base}/nope"), ecs::FETCH_TIMEOUT).unwrap_err();
    t.join().unwrap();
    assert!(
        matches!(err, MetadataError::Status { status: 404, .. }),
        "{err}"
    );

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    drop(l);
    let err = ecs::http_get(&url, ecs::FETCH_TIMEOUT).unwrap_err();
    assert!(matches!(err, MetadataError::Io { .. }), "{err}");
}
