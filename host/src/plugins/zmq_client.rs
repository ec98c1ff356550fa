//! The host side of the `zmq` capability: one request/reply exchange on a fresh REQ socket.
//!
//! A REQ socket that timed out waiting for its reply can never send again (ZeroMQ's strict
//! REQ/REP state machine), and a peer such as the uPKI CA serves one request at a time; a
//! fresh socket per request, closed without lingering, keeps every call independent. The
//! blocking libzmq calls run off the async workers.
//!
//! libzmq is linked only with the `zmq` cargo feature (on by default): a build without it still
//! checks grants and arguments, then answers that ZeroMQ is missing, so a plugin sees why.

#[cfg(feature = "zmq")]
use std::sync::OnceLock;
use std::time::Duration;

use super::bindings::wit::types::CapabilityError;

/// Longest wait a plugin may ask for; its own wall-clock limit usually ends the call sooner.
pub const ZMQ_MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest reply accepted: certificates, chains and CRLs of a private CA, with room to spare;
/// bigger messages are dropped by libzmq before they are buffered.
#[cfg(feature = "zmq")]
pub const ZMQ_MAX_REPLY_BYTES: i64 = 8 << 20;
/// Parts per request at most.
const MAX_PARTS: usize = 16;

/// One libzmq context (its I/O thread) for the whole process.
#[cfg(feature = "zmq")]
fn context() -> &'static zmq::Context {
    static CONTEXT: OnceLock<zmq::Context> = OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new)
}

/// Sends `parts` to `endpoint` and returns the reply's parts, within `timeout` (capped at
/// [`ZMQ_MAX_TIMEOUT`]). The caller has checked the grant.
pub(crate) async fn request(
    endpoint: String,
    parts: Vec<Vec<u8>>,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, CapabilityError> {
    if parts.is_empty() || parts.len() > MAX_PARTS {
        return Err(CapabilityError::Invalid(format!(
            "a request has 1 to {MAX_PARTS} parts"
        )));
    }
    if !endpoint.starts_with("tcp://") {
        return Err(CapabilityError::Invalid(format!(
            "only tcp:// endpoints, not {endpoint:?}"
        )));
    }
    let timeout = timeout.min(ZMQ_MAX_TIMEOUT);
    tokio::task::spawn_blocking(move || exchange(&endpoint, &parts, timeout))
        .await
        .map_err(|e| CapabilityError::Failed(format!("ZeroMQ task failed: {e}")))?
}

#[cfg(feature = "zmq")]
fn exchange(
    endpoint: &str,
    parts: &[Vec<u8>],
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, CapabilityError> {
    let failed = |what: &str, e: zmq::Error| CapabilityError::Failed(format!("{what}: {e}"));
    let millis = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    let socket = context()
        .socket(zmq::REQ)
        .map_err(|e| failed("socket", e))?;
    socket.set_linger(0).map_err(|e| failed("linger", e))?;
    socket
        .set_sndtimeo(millis)
        .map_err(|e| failed("send timeout", e))?;
    socket
        .set_rcvtimeo(millis)
        .map_err(|e| failed("receive timeout", e))?;
    socket
        .set_maxmsgsize(ZMQ_MAX_REPLY_BYTES)
        .map_err(|e| failed("size limit", e))?;
    socket
        .connect(endpoint)
        .map_err(|e| CapabilityError::Invalid(format!("cannot connect to {endpoint}: {e}")))?;
    match socket.send_multipart(parts.iter(), 0) {
        Ok(()) => {}
        Err(zmq::Error::EAGAIN) => return Err(CapabilityError::Timeout),
        Err(e) => return Err(failed("send", e)),
    }
    match socket.recv_multipart(0) {
        Ok(reply) => Ok(reply),
        Err(zmq::Error::EAGAIN) => Err(CapabilityError::Timeout),
        Err(e) => Err(failed("receive", e)),
    }
}

/// What a plugin gets in a build without the `zmq` feature.
#[cfg(not(feature = "zmq"))]
pub const NO_ZMQ: &str =
    "this build has no ZeroMQ support (acmegate was built without its `zmq` feature)";

#[cfg(not(feature = "zmq"))]
fn exchange(
    _endpoint: &str,
    _parts: &[Vec<u8>],
    _timeout: Duration,
) -> Result<Vec<Vec<u8>>, CapabilityError> {
    Err(CapabilityError::Failed(NO_ZMQ.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REP peer on a free port that answers each request with its parts reversed, after
    /// `delay`.
    #[cfg(feature = "zmq")]
    fn peer(delay: Duration) -> String {
        let socket = context().socket(zmq::REP).unwrap();
        socket.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = socket.get_last_endpoint().unwrap().unwrap();
        std::thread::spawn(move || {
            while let Ok(mut parts) = socket.recv_multipart(0) {
                std::thread::sleep(delay);
                parts.reverse();
                if socket.send_multipart(parts, 0).is_err() {
                    break;
                }
            }
        });
        endpoint
    }

    #[cfg(feature = "zmq")]
    #[tokio::test]
    async fn request_reply_with_parts() {
        let endpoint = peer(Duration::ZERO);
        let reply = request(
            endpoint,
            vec![b"a".to_vec(), b"b".to_vec()],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(reply, vec![b"b".to_vec(), b"a".to_vec()]);
    }

    /// A slow peer times out; the next request, on a fresh socket, is served.
    #[cfg(feature = "zmq")]
    #[tokio::test]
    async fn timeout_then_fresh_socket_works() {
        let endpoint = peer(Duration::from_millis(400));
        let slow = request(
            endpoint.clone(),
            vec![b"x".to_vec()],
            Duration::from_millis(100),
        )
        .await;
        assert!(matches!(slow, Err(CapabilityError::Timeout)), "{slow:?}");
        let ok = request(endpoint, vec![b"y".to_vec()], Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(ok, vec![b"y".to_vec()]);
    }

    #[tokio::test]
    async fn bad_arguments_are_invalid() {
        let none = request("tcp://127.0.0.1:1".into(), vec![], Duration::from_secs(1)).await;
        assert!(matches!(none, Err(CapabilityError::Invalid(_))));
        let ipc = request(
            "ipc:///tmp/x".into(),
            vec![b"a".to_vec()],
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(ipc, Err(CapabilityError::Invalid(m)) if m.contains("tcp://")));
    }

    #[cfg(not(feature = "zmq"))]
    #[tokio::test]
    async fn without_libzmq_a_request_says_so() {
        let reply = request(
            "tcp://127.0.0.1:1".into(),
            vec![b"a".to_vec()],
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(reply, Err(CapabilityError::Failed(m)) if m == NO_ZMQ));
    }
}
