//! A scripted Kafka-protocol endpoint: the frame loop that reads requests
//! and writes answers, for tests whose answers the mock cluster cannot give.

use std::io::{Read, Write};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Answers requests on `stream` until the client hangs up or `answer`
/// gives `None` (hang up, as a broker does on a request it cannot read).
/// `answer` gets the request's API, version and body (after its header),
/// and encodes its answer's body into the buffer.
pub fn serve(
    mut stream: impl Read + Write,
    mut answer: impl FnMut(ApiKey, i16, &mut Bytes, &mut BytesMut) -> Option<()>,
) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
        if stream.read_exact(&mut frame).is_err() {
            return;
        }
        let mut request = Bytes::from(frame);
        let (key, version) = (
            i16::from_be_bytes([request[0], request[1]]),
            i16::from_be_bytes([request[2], request[3]]),
        );
        let Ok(api) = ApiKey::try_from(key) else {
            return;
        };
        let header = RequestHeader::decode(&mut request, api.request_header_version(version))
            .expect("request header");
        let mut body = BytesMut::new();
        if answer(api, version, &mut request, &mut body).is_none() {
            return;
        }
        request.advance(request.remaining());
        let mut response = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut response, api.response_header_version(version))
            .expect("response header");
        response.extend_from_slice(&body);
        let mut framed = (response.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&response);
        if stream
            .write_all(&framed)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

/// An ApiVersions answer offering `supported` (API, min, max).
pub fn api_versions(
    supported: &[(ApiKey, i16, i16)],
    version: i16,
    body: &mut BytesMut,
) -> Option<()> {
    ApiVersionsResponse::default()
        .with_api_keys(
            supported
                .iter()
                .map(|(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
        .encode(body, version.min(3))
        .ok()
}

/// A proxy in front of a broker that, when told, takes the first record
/// batch out of the next Fetch answer with two or more (holding Fetch
/// requests back a second meanwhile, so that answers carry several): to
/// the consumer, a record the broker acknowledged is gone from its log,
/// later ones are not.
pub struct BatchDroppingProxy {
    pub port: u16,
    /// Set to drop one batch; cleared once it is dropped.
    pub drop_next: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BatchDroppingProxy {
    pub fn start(upstream: u16) -> BatchDroppingProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let drop_next = Arc::new(AtomicBool::new(false));
        let dropping = drop_next.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                // Which request each correlation id was, to read its answer.
                let asked: Arc<Mutex<std::collections::HashMap<i32, (i16, i16)>>> = Arc::default();
                let (mut from_client, mut to_server) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let requests = asked.clone();
                let holding = dropping.clone();
                std::thread::spawn(move || {
                    while let Some(frame) = read_frame(&mut from_client) {
                        if frame.len() >= 8 {
                            let word = |at: usize| i16::from_be_bytes([frame[at], frame[at + 1]]);
                            if word(0) == 1 && holding.load(std::sync::atomic::Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_secs(1));
                            }
                            let correlation =
                                i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                            requests
                                .lock()
                                .expect("lock")
                                .insert(correlation, (word(0), word(2)));
                        }
                        if write_frame(&mut to_server, &frame).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                let (mut from_server, mut to_client, dropping) = (server, client, dropping.clone());
                std::thread::spawn(move || {
                    while let Some(frame) = read_frame(&mut from_server) {
                        let correlation =
                            i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                        let request = asked.lock().expect("lock").remove(&correlation);
                        let frame = match request {
                            Some((1, version))
                                if dropping.load(std::sync::atomic::Ordering::SeqCst) =>
                            {
                                drop_first_batch(frame, version, &dropping)
                            }
                            _ => frame,
                        };
                        if write_frame(&mut to_client, &frame).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        BatchDroppingProxy { port, drop_next }
    }
}

fn read_frame(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

fn write_frame(stream: &mut impl Write, frame: &[u8]) -> std::io::Result<()> {
    stream.write_all(&(frame.len() as u32).to_be_bytes())?;
    stream.write_all(frame)
}

/// The Fetch answer `frame` without the first record batch of its first
/// partition that has any (a batch: base offset, length, then that many bytes).
fn drop_first_batch(
    frame: Vec<u8>,
    version: i16,
    dropping: &std::sync::atomic::AtomicBool,
) -> Vec<u8> {
    use kafka_protocol::messages::FetchResponse;
    let header_version = ApiKey::Fetch.response_header_version(version);
    let mut body = Bytes::from(frame.clone());
    let Ok(header) = ResponseHeader::decode(&mut body, header_version) else {
        return frame;
    };
    let Ok(mut answer) = FetchResponse::decode(&mut body, version) else {
        return frame;
    };
    // Only a batch with a later one behind it: the consumer moves past the
    // gap (an answer left empty is only asked for again).
    let first_of_two = |records: &Bytes| {
        let length = u32::from_be_bytes(records.get(8..12)?.try_into().ok()?) as usize;
        (records.len() > 12 + length + 12).then_some(12 + length)
    };
    let found = answer
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
        .find_map(|p| {
            let records = p.records.as_mut()?;
            first_of_two(records).map(|end| (records, end))
        });
    let Some((records, end)) = found else {
        return frame;
    };
    *records = records.slice(end..);
    dropping.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut out = BytesMut::new();
    header.encode(&mut out, header_version).expect("header");
    answer.encode(&mut out, version).expect("answer");
    out.to_vec()
}
