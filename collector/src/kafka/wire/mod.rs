//! The Kafka protocol spoken directly (with the `kafka-protocol` crate), for
//! the requests librdkafka does not offer: DescribeQuorum,
//! ListPartitionReassignments, DescribeLogDirs, ElectLeaders and broker
//! configs. Blocking, one request at a time per connection, with the same
//! `[kafka.properties]` security settings as librdkafka (PLAINTEXT, SSL,
//! SASL PLAIN and SCRAM); a setting it cannot honour is refused at start.

mod sasl;
mod security;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

pub use security::Security;

/// Why a request did not get an answer, or got a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The broker does not offer the request at any version this client speaks.
    Unsupported(&'static str),
    /// Connecting, TLS, SASL, or the exchange itself failed.
    Failed(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Unsupported(what) => write!(f, "the broker does not offer {what}"),
            WireError::Failed(e) => f.write_str(e),
        }
    }
}

fn failed(what: impl std::fmt::Display) -> WireError {
    WireError::Failed(what.to_string())
}

/// A name for a request key, in errors.
fn api_name(key: i16) -> &'static str {
    ApiKey::try_from(key).map_or("an unknown request", |k| match k {
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::Metadata => "Metadata",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        _ => "a request",
    })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Frames bigger than this are refused (a broker's answers here are small;
/// a garbled length must not allocate gigabytes).
const MAX_FRAME: usize = 64 << 20;

/// One connection to one broker, with its supported versions.
pub struct Connection {
    stream: Stream,
    address: String,
    correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects, wraps in TLS and authenticates as `security` says, and
    /// asks which versions the broker speaks.
    pub fn open(
        host: &str,
        port: u16,
        security: &Security,
        timeout: Duration,
    ) -> Result<Connection, WireError> {
        let address = format!("{host}:{port}");
        let target = (host, port)
            .to_socket_addrs()
            .map_err(|e| failed(format!("{address}: cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| failed(format!("{address}: resolves to no address")))?;
        let tcp = TcpStream::connect_timeout(&target, timeout)
            .map_err(|e| failed(format!("{address}: cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|e| failed(format!("{address}: {e}")))?;
        let stream = match &security.tls {
            None => Stream::Plain(tcp),
            Some(tls) => Stream::Tls(Box::new(security::wrap(tls, host, tcp, &address)?)),
        };
        let mut connection = Connection {
            stream,
            address,
            correlation: 0,
            versions: HashMap::new(),
        };
        // Every broker answers ApiVersions v0, before authentication too.
        let versions: ApiVersionsResponse = connection.exchange(
            &ApiVersionsRequest::default(),
            ApiKey::ApiVersions as i16,
            0,
        )?;
        if versions.error_code != 0 {
            return Err(failed(format!(
                "{}: ApiVersions refused (error {})",
                connection.address, versions.error_code
            )));
        }
        connection.versions = versions
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(sasl) = &security.sasl {
            sasl::authenticate(&mut connection, sasl)?;
        }
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The newest version both sides speak.
    fn version<R: Request>(&self) -> Result<i16, WireError> {
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or(WireError::Unsupported(api_name(R::KEY)))?;
        let ours = R::VERSIONS;
        let version = max.min(ours.max);
        if version < min.max(ours.min) {
            return Err(WireError::Unsupported(api_name(R::KEY)));
        }
        Ok(version)
    }

    /// Sends `request` at the newest common version; its answer.
    pub fn send<R: Request>(&mut self, request: &R) -> Result<R::Response, WireError> {
        let version = self.version::<R>()?;
        self.exchange(request, R::KEY, version)
    }

    fn exchange<R: Encodable + HeaderVersion, A: Decodable + HeaderVersion>(
        &mut self,
        request: &R,
        key: i16,
        version: i16,
    ) -> Result<A, WireError> {
        let name = api_name(key);
        let address = self.address.clone();
        let bad = |e: &dyn std::fmt::Display| failed(format!("{address}: {name}: {e}"));
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("brokerwatch-collector")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| bad(&e))?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).map_err(|e| bad(&e))?;
        self.stream.flush().map_err(|e| bad(&e))?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| bad(&e))?;
        let size = u32::from_be_bytes(size) as usize;
        if size > MAX_FRAME {
            return Err(bad(&format!("an answer of {size} bytes; refused")));
        }
        let mut answer = vec![0u8; size];
        self.stream.read_exact(&mut answer).map_err(|e| bad(&e))?;
        let mut answer = Bytes::from(answer);
        let header =
            ResponseHeader::decode(&mut answer, A::header_version(version)).map_err(|e| bad(&e))?;
        if header.correlation_id != self.correlation {
            return Err(bad(&"an answer to another request"));
        }
        A::decode(&mut answer, version).map_err(|e| bad(&e))
    }
}

/// A broker as the metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
}

/// Connections to a cluster's brokers, opened when first needed and
/// dropped on any failure (the next request opens a fresh one).
pub struct Wire {
    bootstrap: Vec<(String, u16)>,
    security: Security,
    timeout: Duration,
    brokers: BTreeMap<i32, BrokerAddress>,
    controller: Option<i32>,
    connections: HashMap<i32, Connection>,
    /// A connection to whichever bootstrap broker answered.
    any: Option<Connection>,
}

impl Wire {
    /// From librdkafka properties (`bootstrap.servers` and the security
    /// settings); a setting this client cannot honour is an error.
    pub fn new(properties: &BTreeMap<String, String>, timeout: Duration) -> Result<Wire, String> {
        let security = Security::from_properties(properties)?;
        let servers = properties
            .get("bootstrap.servers")
            .map_or("", String::as_str);
        let bootstrap = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.rsplit_once("://").map_or(s, |(_, rest)| rest);
                let (host, port) = s.rsplit_once(':').ok_or_else(|| {
                    format!("kafka.properties: bootstrap.servers: {s:?} has no port")
                })?;
                let port = port.parse().map_err(|_| {
                    format!("kafka.properties: bootstrap.servers: {s:?} has no port")
                })?;
                Ok((host.trim_matches(['[', ']']).to_owned(), port))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if bootstrap.is_empty() {
            return Err("kafka.properties: bootstrap.servers is empty".into());
        }
        Ok(Wire {
            bootstrap,
            security,
            timeout,
            brokers: BTreeMap::new(),
            controller: None,
            connections: HashMap::new(),
            any: None,
        })
    }

    fn any(&mut self) -> Result<&mut Connection, WireError> {
        if self.any.is_none() {
            let mut last = failed("no bootstrap server");
            let candidates: Vec<(String, u16)> = self
                .bootstrap
                .iter()
                .cloned()
                .chain(self.brokers.values().map(|b| (b.host.clone(), b.port)))
                .collect();
            for (host, port) in candidates {
                match Connection::open(&host, port, &self.security, self.timeout) {
                    Ok(c) => {
                        self.any = Some(c);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if self.any.is_none() {
                return Err(last);
            }
        }
        Ok(self.any.as_mut().expect("just opened"))
    }

    /// Sends to any broker (the bootstrap's first that answers).
    pub fn send_any<R: Request>(&mut self, request: &R) -> Result<R::Response, WireError> {
        let result = self.any()?.send(request);
        if matches!(result, Err(WireError::Failed(_))) {
            self.any = None;
        }
        result
    }

    /// Sends to broker `id` (as the last metadata listed it).
    pub fn send_to<R: Request>(&mut self, id: i32, request: &R) -> Result<R::Response, WireError> {
        if !self.connections.contains_key(&id) {
            let broker = self
                .brokers
                .get(&id)
                .ok_or_else(|| failed(format!("broker {id} is not in the metadata")))?;
            let connection =
                Connection::open(&broker.host, broker.port, &self.security, self.timeout)?;
            self.connections.insert(id, connection);
        }
        let connection = self.connections.get_mut(&id).expect("just opened");
        let result = connection.send(request);
        if matches!(result, Err(WireError::Failed(_))) {
            self.connections.remove(&id);
        }
        result
    }

    /// Sends to the controller the metadata names (in KRaft clusters a
    /// broker, which forwards).
    pub fn send_to_controller<R: Request>(
        &mut self,
        request: &R,
    ) -> Result<R::Response, WireError> {
        // A controller the metadata names but does not list (librdkafka's
        // mock cluster names 0) is asked through any broker.
        match self.controller.filter(|id| self.brokers.contains_key(id)) {
            Some(id) => self.send_to(id, request),
            None => self.send_any(request),
        }
    }

    /// Refreshes the brokers and the controller; the controller's id (`None`
    /// when the cluster names none).
    pub fn refresh(&mut self) -> Result<Option<i32>, WireError> {
        // No topics: the brokers and the controller only.
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        let metadata = self.send_any(&request)?;
        self.brokers = metadata
            .brokers
            .iter()
            .filter_map(|b| {
                Some((
                    b.node_id.0,
                    BrokerAddress {
                        host: b.host.to_string(),
                        port: u16::try_from(b.port).ok()?,
                    },
                ))
            })
            .collect();
        self.connections
            .retain(|id, _| metadata.brokers.iter().any(|b| b.node_id.0 == *id));
        self.controller = (metadata.controller_id.0 >= 0).then_some(metadata.controller_id.0);
        Ok(self.controller)
    }

    /// The brokers of the last refresh.
    pub fn brokers(&self) -> impl Iterator<Item = i32> + '_ {
        self.brokers.keys().copied()
    }
}

#[cfg(test)]
mod tests;
