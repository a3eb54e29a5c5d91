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
