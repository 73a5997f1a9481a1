//! The ECS task metadata endpoint v4: who this container is (cluster, task,
//! family, container name), for the dimensions of the EMF line. Owns the
//! pure parsers of the two documents and a tiny HTTP/1.0 GET client with a
//! hard deadline, and when to try it again after a failure. Blocks for up to
//! that deadline: call it off the reaping thread, a few times at most.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The variable ECS sets in every container (agent 1.39+, Fargate 1.4+).
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The default time allowed for one metadata request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(1);

/// The pauses before each retry of a failed identity lookup. The endpoint
/// may not answer in a task's first moments, and one failure must not cost
/// the dimensions for the container's whole life; each try holds the watch
/// thread for up to two [`FETCH_TIMEOUT`]s, so there are few of them, at
/// most a minute apart once the first have failed. Five tries in all.
pub const RETRY_AFTER: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(60),
];

/// When the identity lookup is due: at once, then after each failure
/// [`RETRY_AFTER`] later, until it succeeds or the pauses run out. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupSchedule {
    next: Instant,
    failures: usize,
}

/// What a failed try leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time (or the first chance after it).
    RetryAt(Instant),
    /// No try left.
    GiveUp,
}

impl LookupSchedule {
    /// The first try due at `now`.
    pub fn new(now: Instant) -> LookupSchedule {
        LookupSchedule {
            next: now,
            failures: 0,
        }
    }

    /// True when a try is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Tries that failed so far.
    pub fn failures(&self) -> usize {
        self.failures
    }

    /// Records a try that failed at `now`.
    pub fn failed(&mut self, now: Instant) -> AfterFailure {
        let pause = RETRY_AFTER.get(self.failures);
        self.failures += 1;
        match pause {
            Some(p) => {
                self.next = now + *p;
                AfterFailure::RetryAt(self.next)
            }
            None => AfterFailure::GiveUp,
        }
    }
}

/// Largest metadata document read (a task with ten containers is ~30 KiB).
const MAX_RESPONSE: usize = 512 * 1024;

/// What ECS says about this container; each `None` where the documents do
/// not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcsIdentity {
    /// The cluster's short name (`default`), never its ARN.
    pub cluster: Option<String>,
    /// The task's ARN.
    pub task_arn: Option<String>,
    /// The task definition family.
    pub family: Option<String>,
    /// The container's name in the task definition.
    pub container: Option<String>,
}

impl EcsIdentity {
    /// Fills what `self` lacks from `other`.
    pub fn or(self, other: EcsIdentity) -> EcsIdentity {
        EcsIdentity {
            cluster: self.cluster.or(other.cluster),
            task_arn: self.task_arn.or(other.task_arn),
            family: self.family.or(other.family),
            container: self.container.or(other.container),
        }
    }

    /// True when every field is known.
    pub fn complete(&self) -> bool {
        self.cluster.is_some()
            && self.task_arn.is_some()
            && self.family.is_some()
            && self.container.is_some()
    }
}

/// Why a metadata document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not JSON, or not an object.
    #[error("ECS metadata is not a JSON object: {0}")]
    Json(String),
    /// The URL is not `http://HOST[:PORT]/PATH`.
    #[error("{0:?}: not an http:// URL")]
    Url(String),
    /// Connecting, sending or reading failed.
    #[error("{url}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The deadline passed.
    #[error("{0}: no answer within the timeout")]
    Timeout(String),
    /// The server answered with a status other than 200.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The response is not HTTP, too large, or cut short.
    #[error("{url}: bad response: {why}")]
    Response {
        /// The URL.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
}

fn object(json: &str) -> Result<serde_json::Map<String, Value>, MetadataError> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(MetadataError::Json("not an object".into())),
        Err(e) => Err(MetadataError::Json(e.to_string())),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME` → `NAME`; a short name stays.
/// The task document gives the ARN on Fargate and the name on EC2.
fn cluster_name(s: String) -> String {
    match s.rsplit_once(":cluster/") {
        Some((_, name)) if s.starts_with("arn:") && !name.is_empty() => name.to_owned(),
        _ => s,
    }
}

/// Parses the container document (`GET ${ECS_CONTAINER_METADATA_URI_V4}`):
/// `Name`, and the `com.amazonaws.ecs.*` labels the agent sets.
pub fn parse_container_metadata(json: &str) -> Result<EcsIdentity, MetadataError> {
    let m = object(json)?;
    let labels = m.get("Labels");
    let label = |k: &str| text(labels.and_then(|l| l.get(k)));
    Ok(EcsIdentity {
        cluster: label("com.amazonaws.ecs.cluster").map(cluster_name),
        task_arn: label("com.amazonaws.ecs.task-arn"),
        family: label("com.amazonaws.ecs.task-definition-family"),
        container: text(m.get("Name")).or_else(|| label("com.amazonaws.ecs.container-name")),
    })
}

/// Parses the task document (`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`):
/// `Cluster`, `TaskARN`, `Family`. The container name is taken from
/// `Containers[]` only when `docker_id` (the container document's
/// `DockerId`, or the hostname on EC2) picks one out, or the task has a
/// single container: guessing among several would mislabel every metric.
pub fn parse_task_metadata(
    json: &str,
    docker_id: Option<&str>,
) -> Result<EcsIdentity, MetadataError> {
    let m = object(json)?;
    let containers = m
        .get("Containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let own = match docker_id {
        Some(id) if !id.is_empty() => containers.iter().find(|c| {
            c.get("DockerId")
                .and_then(Value::as_str)
                .is_some_and(|d| d == id || (id.len() >= 12 && d.starts_with(id)))
        }),
        _ => None,
    };
    let own = own.or(match containers {
        [only] => Some(only),
        _ => None,
    });
    Ok(EcsIdentity {
        cluster: text(m.get("Cluster")).map(cluster_name),
        task_arn: text(m.get("TaskARN")),
        family: text(m.get("Family")),
        container: own.and_then(|c| text(c.get("Name"))),
    })
}

/// The container document's `DockerId`, to find it in the task's list.
pub fn container_docker_id(json: &str) -> Option<String> {
    object(json).ok().and_then(|m| text(m.get("DockerId")))
}

/// Reads who this container is from the v4 endpoint at `base` (the value of
/// [`METADATA_ENV`]): the container document, then the task document if
/// anything is still missing. Each request gets `timeout`.
pub fn fetch_identity(base: &str, timeout: Duration) -> Result<EcsIdentity, MetadataError> {
    let container = http_get(base, timeout)?;
    let mut id = parse_container_metadata(&container)?;
    if !id.complete() {
        let task_url = format!("{}/task", base.trim_end_matches('/'));
        let task = http_get(&task_url, timeout)?;
        let docker_id = container_docker_id(&container);
        id = id.or(parse_task_metadata(&task, docker_id.as_deref())?);
    }
    Ok(id)
}

/// `http://HOST[:PORT][/PATH]` → (host for the Host header, address, path).
/// Public for its fuzz target: the URL is the environment's.
pub fn split_url(url: &str) -> Result<(&str, SocketAddr, &str), MetadataError> {
    let bad = || MetadataError::Url(url.into());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    // IP literals only: ECS gives 169.254.170.2 (EC2 and Fargate alike), and
    // resolving names would link glibc's static resolver (~100 KiB+) into
    // ward and could block past the deadline.
    let addr = if has_port {
        authority.parse::<SocketAddr>().ok()
    } else {
        authority
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 80))
    }
    .ok_or_else(bad)?;
    Ok((authority, addr, path))
}

/// A GET with a deadline of `timeout` for the whole exchange, returning the
/// body of a 200 response. HTTP/1.0, so the server sends the body whole and
/// closes; a chunked answer is decoded all the same.
pub fn http_get(url: &str, timeout: Duration) -> Result<String, MetadataError> {
    let (host, addr, path) = split_url(url)?;
    let deadline = Instant::now() + timeout;
    let io = |source| MetadataError::Io {
        url: url.into(),
        source,
    };
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| MetadataError::Timeout(url.into()))
    };
    let mut s = TcpStream::connect_timeout(&addr, left()?).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut => MetadataError::Timeout(url.into()),
        _ => io(e),
    })?;
    s.set_write_timeout(Some(left()?)).map_err(io)?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: ward/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut resp = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        s.set_read_timeout(Some(left()?)).map_err(io)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if resp.len() + n > MAX_RESPONSE {
                    return Err(MetadataError::Response {
                        url: url.into(),
                        why: "larger than 512 KiB",
                    });
                }
                resp.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(MetadataError::Timeout(url.into()));
            }
            Err(e) => return Err(io(e)),
        }
    }
    let (status, body) = parse_response(&resp).map_err(|why| MetadataError::Response {
        url: url.into(),
        why,
    })?;
    if status != 200 {
        return Err(MetadataError::Status {
            url: url.into(),
            status,
        });
    }
    String::from_utf8(body).map_err(|_| MetadataError::Response {
        url: url.into(),
        why: "body is not UTF-8",
    })
}

/// Splits a whole HTTP/1.x response (read to EOF) into status and body,
/// honouring `Content-Length` and chunked transfer coding. Pure.
pub fn parse_response(resp: &[u8]) -> Result<(u16, Vec<u8>), &'static str> {
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    let head = std::str::from_utf8(&resp[..end]).map_err(|_| "head is not text")?;
    let body = &resp[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err("bad status line");
    };
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    let status: u16 = code.parse().map_err(|_| "bad status code")?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err("bad header line");
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().ends_with("chunked");
        }
    }
    if chunked {
        return Ok((status, dechunk(body)?));
    }
    match length {
        Some(n) if body.len() < n => Err("body cut short"),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line cut short")?;
        let line = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| "bad chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let end = size.checked_add(2).ok_or("bad chunk size")?;
        if b.len() < end || &b[size..end] != b"\r\n" {
            return Err("chunk cut short");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[end..];
    }
}

/// An example container document in the v4 shape (as the ECS agent on EC2
/// serves it), for tests here and in `tests/metrics_emf.rs`.
pub const EXAMPLE_CONTAINER: &str = r#"{
    "DockerId": "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66",
    "Name": "curl",
    "DockerName": "ecs-curltest-24-curl-cca48e8dcadd97805600",
    "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
    "ImageID": "sha256:d691691e9652791a60114e67b365688d20d19940dde7c4736ea30e660d8d3553",
    "Labels": {
        "com.amazonaws.ecs.cluster": "default",
        "com.amazonaws.ecs.container-name": "curl",
        "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-west-2:111122223333:task/default/8f03e41243824aea923aca126495f665",
        "com.amazonaws.ecs.task-definition-family": "curltest",
        "com.amazonaws.ecs.task-definition-version": "24"
    },
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 10, "Memory": 128},
    "CreatedAt": "2020-10-02T00:15:07.620912337Z",
    "StartedAt": "2020-10-02T00:15:08.062559351Z",
    "Type": "NORMAL",
    "LogDriver": "awslogs",
    "LogOptions": {
        "awslogs-create-group": "true",
        "awslogs-group": "/ecs/metadata",
        "awslogs-region": "us-west-2",
        "awslogs-stream": "ecs/curl/8f03e41243824aea923aca126495f665"
    },
    "ContainerARN": "arn:aws:ecs:us-west-2:111122223333:container/0206b271-b33f-47ab-86c6-a0ba208a70a9",
    "Networks": [
        {
            "NetworkMode": "awsvpc",
            "IPv4Addresses": ["10.0.2.100"],
            "AttachmentIndex": 0,
            "MACAddress": "0e:9e:32:c7:48:85",
            "IPv4SubnetCIDRBlock": "10.0.2.0/24",
            "PrivateDNSName": "ip-10-0-2-100.us-west-2.compute.internal",
            "SubnetGatewayIpv4Address": "10.0.2.1/24"
        }
    ]
}"#;

/// An example task document in the v4 shape (Fargate: `Cluster` is an ARN).
pub const EXAMPLE_TASK: &str = r#"{
    "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
    "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
    "Family": "curltest",
    "Revision": "3",
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 0.25, "Memory": 512},
    "PullStartedAt": "2020-10-08T20:47:16.053330955Z",
    "PullStoppedAt": "2020-10-08T20:47:19.592684631Z",
    "AvailabilityZone": "us-west-2a",
    "LaunchType": "FARGATE",
    "Containers": [
        {
            "DockerId": "e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
            "Name": "curl",
            "DockerName": "curl",
            "Image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/curltest:latest",
            "Labels": {
                "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
                "com.amazonaws.ecs.container-name": "curl",
                "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
                "com.amazonaws.ecs.task-definition-family": "curltest",
                "com.amazonaws.ecs.task-definition-version": "3"
            },
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 0},
            "Type": "NORMAL",
            "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["192.0.2.3"]}]
        },
        {
            "DockerId": "e9028f8d5d8e4f258373e7b93ce9a3c3-3693182032",
            "Name": "sidecar",
            "DockerName": "sidecar",
            "Image": "public.ecr.aws/example/sidecar:1",
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 0},
            "Type": "NORMAL"
        }
    ],
    "ClockDrift": {"ClockErrorBound": 0.5, "ReferenceTimestamp": "2021-09-07T16:57:44Z", "ClockSynchronizationStatus": "SYNCHRONIZED"},
    "EphemeralStorageMetrics": {"Utilized": 261, "Reserved": 20496}
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_retried_a_few_times_then_given_up() {
        let t0 = Instant::now();
        let mut s = LookupSchedule::new(t0);
        assert!(s.due(t0));
        let mut now = t0;
        for pause in RETRY_AFTER {
            assert_eq!(s.failed(now), AfterFailure::RetryAt(now + pause));
            assert!(!s.due(now + pause - Duration::from_millis(1)));
            now += pause;
            assert!(s.due(now));
        }
        assert_eq!(s.failed(now), AfterFailure::GiveUp);
        assert_eq!(s.failures(), RETRY_AFTER.len() + 1);
        // Bounded: a few tries, never closer than 5 s, a minute apart at most.
        assert!(RETRY_AFTER.len() <= 5);
        assert!(RETRY_AFTER.iter().all(|p| *p >= Duration::from_secs(5)));
        assert!(RETRY_AFTER.iter().all(|p| *p <= Duration::from_secs(60)));
    }

    #[test]
    fn container_document() {
        let id = parse_container_metadata(EXAMPLE_CONTAINER).unwrap();
        assert_eq!(id.cluster.as_deref(), Some("default"));
        assert_eq!(id.family.as_deref(), Some("curltest"));
        assert_eq!(id.container.as_deref(), Some("curl"));
        assert_eq!(
            id.task_arn.as_deref(),
            Some(
                "arn:aws:ecs:us-west-2:111122223333:task/default/8f03e41243824aea923aca126495f665"
            )
        );
        assert!(id.complete());
    }

    #[test]
    fn task_document_names_the_cluster_not_its_arn() {
        let id = parse_task_metadata(
            EXAMPLE_TASK,
            Some("e9028f8d5d8e4f258373e7b93ce9a3c3-3693182032"),
        )
        .unwrap();
        assert_eq!(id.cluster.as_deref(), Some("default"));
        assert_eq!(id.family.as_deref(), Some("curltest"));
        assert_eq!(id.container.as_deref(), Some("sidecar"));
        // Two containers and no id: the container is not guessed.
        let id = parse_task_metadata(EXAMPLE_TASK, None).unwrap();
        assert_eq!(id.container, None);
        assert!(id.task_arn.is_some());
    }

    #[test]
    fn odd_documents() {
        assert!(parse_container_metadata("[]").is_err());
        assert!(parse_container_metadata("{").is_err());
        let id =
            parse_container_metadata(r#"{"Name": "", "Labels": {"com.amazonaws.ecs.cluster": 7}}"#)
                .unwrap();
        assert_eq!(id, EcsIdentity::default());
        let id = parse_task_metadata(
            r#"{"Cluster": "prod", "Containers": [{"Name": "app"}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            (id.cluster.as_deref(), id.container.as_deref()),
            (Some("prod"), Some("app"))
        );
    }

    #[test]
    fn urls() {
        let (h, a, p) = split_url("http://169.254.170.2/v4/abc-123").unwrap();
        assert_eq!(
            (h, a, p),
            (
                "169.254.170.2",
                "169.254.170.2:80".parse().unwrap(),
                "/v4/abc-123"
            )
        );
        let (h, a, p) = split_url("http://127.0.0.1:51678").unwrap();
        assert_eq!(
            (h, a, p),
            ("127.0.0.1:51678", "127.0.0.1:51678".parse().unwrap(), "/")
        );
        let (_, a, _) = split_url("http://[::1]:8080/x").unwrap();
        assert_eq!(a, "[::1]:8080".parse().unwrap());
        assert!(split_url("https://x/").is_err());
        assert!(split_url("http:///x").is_err());
        assert!(split_url("http://u@127.0.0.1/").is_err());
    }

    #[test]
    fn responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx";
        assert_eq!(parse_response(r).unwrap(), (200, b"{}".to_vec()));
        let r = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(r).unwrap(), (200, b"{\"a\":1}".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, b"{\"a\":1}".to_vec()));
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap().0,
            404
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nab")
                .is_err()
        );
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_response(b"").is_err());
    }
}
