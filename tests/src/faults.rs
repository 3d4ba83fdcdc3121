//! A fault-injecting HTTP/1.1 proxy between the functions and the emulator:
//! throttling in each service's own words, HTTP 500s, connection resets and
//! added latency, decided per request from a seed so that a run can be repeated.
//!
//! Every decision is a hash of the seed, the operation (`CreateSnapshot`, `S3
//! GET ?list-type`) and how many requests of that operation came before: a
//! sequential run meets the same faults every time, and concurrent runs meet
//! the same faults per operation in whatever order they arrive.
//!
//! A fault comes either before the request is forwarded (the emulator never
//! sees it) or after (the emulator did the work and the client still sees an
//! error and retries): the second is what tests idempotency.
//!
//! The proxy reads each request whole, sends it upstream on a fresh connection
//! with `Connection: close`, reads the response to its end and answers the
//! client with a `Content-Length` response, keeping the client's connection
//! alive. Test traffic only: it listens and forwards on 127.0.0.1.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How often each fault happens, per request, and the seed that decides which requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// Seeds every decision.
    pub seed: u64,
    /// Chance of the service's own throttling error (`Throttling`, `RequestLimitExceeded`, S3 `SlowDown`).
    pub throttle: f64,
    /// Chance of an HTTP 500 (`InternalError`/`InternalFailure`).
    pub server_error: f64,
    /// Chance of a dropped connection: no response at all.
    pub reset: f64,
    /// Of those faults, the share that happens after the emulator did the work.
    pub after_share: f64,
    /// Chance of an added delay (not a fault: the request then goes through).
    pub latency: f64,
    /// The longest added delay; each delay is drawn evenly up to it.
    pub max_latency: Duration,
    /// If set, the faults fall on this one request alone: the operation, as
    /// [`Stats`] names it (`s3:POST ?uploads`), and which of its requests
    /// (1 for the first; counted as the draws are, by the operation without
    /// its service, which is the same for S3's).
    pub only: Option<(&'static str, u64)>,
}

impl FaultConfig {
    /// No faults at all: a transparent proxy.
    pub fn none(seed: u64) -> Self {
        FaultConfig {
            seed,
            throttle: 0.0,
            server_error: 0.0,
            reset: 0.0,
            after_share: 0.5,
            latency: 0.0,
            max_latency: Duration::ZERO,
            only: None,
        }
    }

    /// Faults on `rate` of all requests: 40 % of them throttling, 30 % HTTP
    /// 500s, 30 % resets, half of each after the emulator did the work; and
    /// a delay of up to 50 ms on another `rate` of requests.
    pub fn mixed(seed: u64, rate: f64) -> Self {
        FaultConfig {
            seed,
            throttle: rate * 0.4,
            server_error: rate * 0.3,
            reset: rate * 0.3,
            after_share: 0.5,
            latency: rate,
            max_latency: Duration::from_millis(50),
            only: None,
        }
    }

    /// The chance that a request meets a fault (latency not counted).
    pub fn fault_rate(&self) -> f64 {
        self.throttle + self.server_error + self.reset
    }
}

/// What the proxy did to a request instead of passing it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The service's throttling error.
    Throttle,
    /// HTTP 500.
    ServerError,
    /// The connection dropped without a response.
    Reset,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Throttle => "throttle",
            Fault::ServerError => "http-500",
            Fault::Reset => "reset",
        })
    }
}

/// Whether the emulator saw the request before the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The request never reached the emulator.
    Before,
    /// The emulator did the work; the client saw the fault.
    After,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Before => "before",
            Phase::After => "after",
        })
    }
}

/// What happened to the requests of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Requests received.
    pub requests: usize,
    /// Requests the emulator received (passed through, or faulted after).
    pub reached: usize,
    /// Requests answered with a fault or dropped.
    pub faulted: usize,
}

/// Everything the proxy counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received.
    pub requests: usize,
    /// Requests delayed.
    pub delayed: usize,
    /// Faults injected, by kind and phase.
    pub injected: BTreeMap<(Fault, Phase), usize>,
    /// Per operation (`ec2:CreateSnapshot`).
    pub operations: BTreeMap<String, OperationStats>,
}

impl Stats {
    /// Faults injected in all.
    pub fn faults(&self) -> usize {
        self.injected.values().sum()
    }

    /// Faults injected after the emulator did the work.
    pub fn faults_after(&self) -> usize {
        self.injected
            .iter()
            .filter(|((_, phase), _)| *phase == Phase::After)
            .map(|(_, n)| n)
            .sum()
    }

    /// The counts of one operation (zero if it was never called).
    pub fn operation(&self, name: &str) -> OperationStats {
        self.operations.get(name).copied().unwrap_or_default()
    }

    /// What happened between `earlier` and this.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let mut operations = BTreeMap::new();
        for (name, now) in &self.operations {
            let then = earlier.operation(name);
            operations.insert(
                name.clone(),
                OperationStats {
                    requests: now.requests - then.requests,
                    reached: now.reached - then.reached,
                    faulted: now.faulted - then.faulted,
                },
            );
        }
        Stats {
            requests: self.requests - earlier.requests,
            delayed: self.delayed - earlier.delayed,
            injected: self
                .injected
                .iter()
                .map(|(k, n)| (*k, n - earlier.injected.get(k).copied().unwrap_or(0)))
                .collect(),
            operations,
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests, {} faults", self.requests, self.faults())?;
        let parts: Vec<String> = self
            .injected
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((fault, phase), n)| format!("{fault}/{phase} {n}"))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ", {} delayed", self.delayed)
    }
}

struct Shared {
    upstream: String,
    config: Mutex<FaultConfig>,
    stats: Mutex<Stats>,
    occurrences: Mutex<BTreeMap<String, u64>>,
    connections: AtomicUsize,
}

/// The proxy, listening on 127.0.0.1 until dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: point the SDK here.
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub async fn start(upstream: &str, config: FaultConfig) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_owned();
        assert!(
            upstream.starts_with("127.0.0.1:") || upstream.starts_with("localhost:"),
            "fault traffic goes to the loopback only, not {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream,
            config: Mutex::new(config),
            stats: Mutex::new(Stats::default()),
            occurrences: Mutex::new(BTreeMap::new()),
            connections: AtomicUsize::new(0),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepting.connections.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    // A broken client connection ends its own task only.
                    let _ = serve(stream, &shared).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
            task,
        }
    }

    /// SDK configuration for `region` that goes through this proxy.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        crate::sdk_config_at(&self.endpoint, region).await
    }

    /// Changes the faults from the next request on (counts and the sequence per operation go on).
    pub fn set_config(&self, config: FaultConfig) {
        *lock(&self.shared.config) = config;
    }

    /// The faults in force.
    pub fn config(&self) -> FaultConfig {
        *lock(&self.shared.config)
    }

    /// What the proxy counted so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One HTTP/1.1 request or response, read whole.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the proxy decided for one request.
struct Decision {
    fault: Option<(Fault, Phase)>,
    delay: Option<Duration>,
}

/// Serves one client connection: requests one after another, until the client closes it.
async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let Some((start, headers)) = read_head(&mut read, Head::Request).await? else {
            return Ok(());
        };
        let mut request = Message {
            start,
            headers,
            body: Vec::new(),
        };
        if request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            write.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        request.body = read_body(&mut read, &request, false).await?;
        let close = request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (service, operation) = identify(&request);
        let name = format!("{service}:{operation}");
        let decision = decide(shared, &operation, &name);
        if let Some(delay) = decision.delay {
            tokio::time::sleep(delay).await;
        }
        let reaches = !matches!(decision.fault, Some((_, Phase::Before)));
        let upstream = if reaches {
            Some(forward(&shared.upstream, &request).await)
        } else {
            None
        };
        {
            let mut stats = lock(&shared.stats);
            stats.requests += 1;
            stats.delayed += usize::from(decision.delay.is_some());
            if let Some(key) = decision.fault {
                *stats.injected.entry(key).or_default() += 1;
            }
            let op = stats.operations.entry(name).or_default();
            op.requests += 1;
            op.reached += usize::from(reaches);
            op.faulted += usize::from(decision.fault.is_some());
        }
        let response = match (decision.fault, upstream) {
            (Some((Fault::Reset, _)), _) => return Ok(()),
            (Some((fault, _)), _) => fault_response(fault, &service),
            (None, Some(Ok(response))) => response,
            // The emulator itself could not be reached: the client sees a 502.
            (None, Some(Err(e))) => plain(502, "Bad Gateway", &e.to_string()),
            (None, None) => unreachable!("a request without a fault is forwarded"),
        };
        let head_only = request.start.starts_with("HEAD ");
        write.write_all(&encode(&response, head_only)).await?;
        write.flush().await?;
        if close {
            return Ok(());
        }
    }
}

/// The service (from the signature's credential scope) and the operation of a request.
fn identify(request: &Message) -> (String, String) {
    let service = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(['/', ',']).nth(3))
        .unwrap_or("unknown")
        .to_owned();
    if let Some(target) = request.header("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target);
        return (service, op.to_owned());
    }
    let form = request
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let body = String::from_utf8_lossy(&request.body);
        if let Some(action) = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
        {
            return (service, action.to_owned());
        }
    }
    // REST (S3): the method and the names of the query parameters.
    let mut parts = request.start.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let mut keys: Vec<&str> = target
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .map(|p| p.split('=').next().unwrap_or_default())
                .filter(|k| !k.is_empty() && *k != "x-id")
                .collect()
        })
        .unwrap_or_default();
    keys.sort_unstable();
    let op = if keys.is_empty() {
        method.to_owned()
    } else {
        format!("{method} ?{}", keys.join("&"))
    };
    (service, op)
}

/// The decision for the next request of `operation`.
fn decide(shared: &Shared, operation: &str, name: &str) -> Decision {
    let config = *lock(&shared.config);
    let n = {
        let mut seen = lock(&shared.occurrences);
        let n = seen.entry(operation.to_owned()).or_default();
        *n += 1;
        *n
    };
    if config.only.is_some_and(|only| only != (name, n)) {
        return Decision {
            fault: None,
            delay: None,
        };
    }
    let mut state =
        config.seed ^ fnv1a(operation.as_bytes()) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || unit(splitmix64(&mut state));
    let (kind, phase, latency, amount) = (next(), next(), next(), next());
    let fault = if kind < config.throttle {
        Some(Fault::Throttle)
    } else if kind < config.throttle + config.server_error {
        Some(Fault::ServerError)
    } else if kind < config.fault_rate() {
        Some(Fault::Reset)
    } else {
        None
    };
    let phase = if phase < config.after_share {
        Phase::After
    } else {
        Phase::Before
    };
    Decision {
        fault: fault.map(|f| (f, phase)),
        delay: (latency < config.latency).then(|| config.max_latency.mul_f64(amount)),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The fault as the service would say it.
fn fault_response(fault: Fault, service: &str) -> Message {
    let request_id = "lifeboat-fault-proxy";
    let (status, reason, code, message) = match (fault, service) {
        (Fault::Throttle, "ec2") => (
            503,
            "Service Unavailable",
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        (Fault::Throttle, "s3") => (
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        (Fault::Throttle, _) => (400, "Bad Request", "Throttling", "Rate exceeded"),
        (_, "ec2" | "s3") => (
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (_, _) => (
            500,
            "Internal Server Error",
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        ),
    };
    let (content_type, body) = match service {
        "ec2" => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        "s3" => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
        "secretsmanager" | "sqs" => (
            "application/x-amz-json-1.1",
            format!(
                "{{\"__type\":\"{}\",\"message\":\"{message}\"}}",
                if code == "Throttling" {
                    "ThrottlingException"
                } else {
                    code
                }
            ),
        ),
        _ => {
            let kind = if fault == Fault::Throttle {
                "Sender"
            } else {
                "Receiver"
            };
            (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
                ),
            )
        }
    };
    Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("x-amzn-RequestId".into(), request_id.into()),
            ("x-amz-request-id".into(), request_id.into()),
        ],
        body: body.into_bytes(),
    }
}

fn plain(status: u16, reason: &str, text: &str) -> Message {
    Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: text.as_bytes().to_vec(),
    }
}

/// Sends `request` upstream on a fresh connection and reads the whole response.
async fn forward(upstream: &str, request: &Message) -> std::io::Result<Message> {
    let stream = TcpStream::connect(upstream).await?;
    let (read, mut write) = stream.into_split();
    let mut out = Message {
        start: request.start.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    out.headers
        .retain(|(k, _)| !is_framing(k) && !k.eq_ignore_ascii_case("expect"));
    out.headers.push(("Connection".into(), "close".into()));
    write.write_all(&encode(&out, false)).await?;
    write.flush().await?;
    let mut read = BufReader::new(read);
    let (start, headers) = read_head(&mut read, Head::Response)
        .await?
        .ok_or_else(|| invalid("no response from the emulator"))?;
    let mut response = Message {
        start,
        headers,
        body: Vec::new(),
    };
    let status: u16 = response
        .start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let bodiless = request.start.starts_with("HEAD ") || status == 204 || status == 304;
    if !bodiless {
        response.body = read_body(&mut read, &response, true).await?;
    }
    Ok(response)
}

fn is_framing(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// A message on the wire with `Content-Length` framing (a HEAD response keeps its own headers).
fn encode(message: &Message, head_only: bool) -> Vec<u8> {
    let mut out = format!("{}\r\n", message.start);
    for (k, v) in &message.headers {
        let keep = if head_only {
            !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("transfer-encoding")
        } else {
            !is_framing(k) || k.eq_ignore_ascii_case("connection")
        };
        if keep {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !head_only {
        out.push_str(&format!("Content-Length: {}\r\n", message.body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&message.body);
    }
    bytes
}

/// Which start line a message head has.
#[derive(Clone, Copy)]
enum Head {
    Request,
    Response,
}

fn invalid(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.into())
}

/// Reads a message head (start line and headers, up to the empty line) and
/// parses it with httparse; `None` when the stream ends between messages.
async fn read_head<R: AsyncBufRead + Unpin>(
    read: &mut R,
    kind: Head,
) -> std::io::Result<Option<(String, Vec<(String, String)>)>> {
    let mut head = Vec::new();
    loop {
        if read.read_until(b'\n', &mut head).await? == 0 {
            return match head.is_empty() {
                true => Ok(None),
                false => Err(invalid("headers cut short")),
            };
        }
        // Empty lines between messages are allowed (RFC 9112, 2.2).
        if head == b"\r\n" || head == b"\n" {
            head.clear();
        } else if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let pairs = |headers: &[httparse::Header<'_>]| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).trim().to_owned();
                (h.name.to_owned(), value)
            })
            .collect()
    };
    let bad = |e: httparse::Error| invalid(format!("unreadable HTTP head: {e}"));
    Ok(Some(match kind {
        Head::Request => {
            let mut request = httparse::Request::new(&mut slots);
            request.parse(&head).map_err(bad)?;
            let method = request.method.unwrap_or_default();
            let path = request.path.unwrap_or_default();
            (format!("{method} {path} HTTP/1.1"), pairs(request.headers))
        }
        Head::Response => {
            let mut response = httparse::Response::new(&mut slots);
            response.parse(&head).map_err(bad)?;
            let code = response.code.unwrap_or_default();
            let reason = response.reason.unwrap_or_default();
            (format!("HTTP/1.1 {code} {reason}"), pairs(response.headers))
        }
    }))
}

/// The body by its framing: chunked, `Content-Length`, or (a response only) up to the end.
async fn read_body<R: AsyncBufRead + Unpin>(
    read: &mut R,
    message: &Message,
    to_end: bool,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if message
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        let mut line = Vec::new();
        loop {
            line.clear();
            read.read_until(b'\n', &mut line).await?;
            let size = match httparse::parse_chunk_size(&line) {
                Ok(httparse::Status::Complete((_, size))) => {
                    usize::try_from(size).map_err(|_| invalid("chunk too large"))?
                }
                _ => return Err(invalid("bad chunk size")),
            };
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    let n = read.read_until(b'\n', &mut line).await?;
                    if n == 0 || line == b"\r\n" || line == b"\n" {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            read.read_exact(&mut body[start..]).await?;
            line.clear();
            read.read_until(b'\n', &mut line).await?;
        }
    }
    if let Some(length) = message.header("content-length") {
        let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
        body.resize(length, 0);
        read.read_exact(&mut body).await?;
    } else if to_end {
        read.read_to_end(&mut body).await?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(config: FaultConfig) -> Shared {
        Shared {
            upstream: String::new(),
            config: Mutex::new(config),
            stats: Mutex::new(Stats::default()),
            occurrences: Mutex::new(BTreeMap::new()),
            connections: AtomicUsize::new(0),
        }
    }

    fn draws(config: FaultConfig, n: usize) -> Vec<Option<(Fault, Phase)>> {
        let s = shared(config);
        (0..n)
            .map(|_| decide(&s, "CreateSnapshot", "ec2:CreateSnapshot").fault)
            .collect()
    }

    #[test]
    fn a_fault_set_on_one_request_falls_on_it_alone() {
        let config = FaultConfig {
            reset: 1.0,
            after_share: 1.0,
            only: Some(("ec2:CreateSnapshot", 2)),
            ..FaultConfig::none(7)
        };
        assert_eq!(
            draws(config, 4),
            vec![None, Some((Fault::Reset, Phase::After)), None, None]
        );
        let other = FaultConfig {
            only: Some(("s3:POST ?uploads", 1)),
            ..config
        };
        assert_eq!(draws(other, 2), vec![None, None], "another operation's");
    }

    #[test]
    fn the_same_seed_meets_the_same_faults() {
        let config = FaultConfig::mixed(7, 0.2);
        assert_eq!(draws(config, 500), draws(config, 500));
        assert_ne!(
            draws(config, 500),
            draws(FaultConfig::mixed(8, 0.2), 500),
            "another seed, other faults"
        );
    }

    #[test]
    fn the_rates_are_the_configured_ones() {
        let faults = draws(FaultConfig::mixed(7, 0.2), 20_000);
        let share = |f: Fault| {
            faults
                .iter()
                .filter(|d| d.is_some_and(|d| d.0 == f))
                .count() as f64
                / 20_000.0
        };
        assert!((share(Fault::Throttle) - 0.08).abs() < 0.01);
        assert!((share(Fault::ServerError) - 0.06).abs() < 0.01);
        assert!((share(Fault::Reset) - 0.06).abs() < 0.01);
        let after = faults
            .iter()
            .flatten()
            .filter(|d| d.1 == Phase::After)
            .count() as f64
            / faults.iter().flatten().count() as f64;
        assert!((after - 0.5).abs() < 0.05, "{after}");
        assert!(
            draws(FaultConfig::none(7), 1000)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn operations_are_named_by_action_target_or_method() {
        let message = |start: &str, headers: &[(&str, &str)], body: &str| Message {
            start: start.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let auth = |service: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
            )
        };
        let ec2 = auth("ec2");
        let query = message(
            "POST / HTTP/1.1",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &ec2),
            ],
            "Action=CreateSnapshot&Version=2016-11-15",
        );
        assert_eq!(identify(&query), ("ec2".into(), "CreateSnapshot".into()));
        let s3 = auth("s3");
        let list = message(
            "GET /bucket?list-type=2&prefix=pg%2F&x-id=ListObjectsV2 HTTP/1.1",
            &[("Authorization", &s3)],
            "",
        );
        assert_eq!(
            identify(&list),
            ("s3".into(), "GET ?list-type&prefix".into())
        );
    }
}
