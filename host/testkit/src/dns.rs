//! A small authoritative DNS server for tests, hand-written on hickory-proto's `Message`: it
//! answers A/AAAA/TXT/CAA from an in-memory zone (and TXT from files, for shell hook scripts)
//! over UDP and TCP on one 127.0.0.1 port, so validation can run against real sockets.
//!
//! Defaults are chosen so tests need little setup: every name without an explicit address gets
//! `A 127.0.0.1`, unknown record types get an empty NOERROR answer, and NXDOMAIN is never sent
//! (so CAA climbing and "no TXT record" paths see empty answers, like most real zones).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hickory_proto::op::{Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NULL, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// RFC 1035 §4.2.1: plain UDP answers are limited to 512 octets; larger ones are truncated (TC)
/// so the client retries over TCP.
const UDP_LIMIT: usize = 512;

/// One CAA property as it appears in a zone file: flags, tag, value (RFC 8659 §4.1).
pub type CaaProperty = (u8, String, String);

/// The records the server answers from. Names are stored lowercase without the trailing dot.
#[derive(Debug)]
struct Zone {
    default_a: Option<Ipv4Addr>,
    a: HashMap<String, Vec<Ipv4Addr>>,
    aaaa: HashMap<String, Vec<Ipv6Addr>>,
    txt: HashMap<String, Vec<String>>,
    caa: HashMap<String, Vec<CaaProperty>>,
    servfail: HashSet<String>,
    txt_dir: Option<PathBuf>,
}

impl Default for Zone {
    fn default() -> Self {
        Self {
            default_a: Some(Ipv4Addr::LOCALHOST),
            a: HashMap::new(),
            aaaa: HashMap::new(),
            txt: HashMap::new(),
            caa: HashMap::new(),
            servfail: HashSet::new(),
            txt_dir: None,
        }
    }
}

/// A running test DNS server; it stops when dropped.
#[derive(Debug)]
pub struct TestDnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestDnsServer {
    /// Binds UDP and TCP on the same random 127.0.0.1 port and starts serving.
    pub async fn start() -> io::Result<TestDnsServer> {
        let (udp, tcp) = bind_pair().await?;
        let addr = udp.local_addr()?;
        let zone = Arc::new(Mutex::new(Zone::default()));
        let tasks = vec![
            tokio::spawn(serve_udp(udp, zone.clone())),
            tokio::spawn(serve_tcp(tcp, zone.clone())),
        ];
        Ok(TestDnsServer { addr, zone, tasks })
    }

    /// The address to point a resolver at (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets (or with `None` removes) the A answer for names that have no A/AAAA of their own.
    pub fn with_default_a(self, ip: Option<Ipv4Addr>) -> Self {
        self.zone().default_a = ip;
        self
    }

    /// Also serves TXT values from `<dir>/<fqdn without trailing dot>`, one value per line, so
    /// that plain shell hooks (certbot, lego) can publish dns-01 values by writing files.
    pub fn with_txt_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.zone().txt_dir = Some(dir.into());
        self
    }

    /// Replaces the A records of `name`.
    pub fn set_a(&self, name: &str, ip: Ipv4Addr) {
        self.zone().a.insert(key(name), vec![ip]);
    }

    /// Replaces the AAAA records of `name`.
    pub fn set_aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.zone().aaaa.insert(key(name), vec![ip]);
    }

    /// Adds one TXT record to `name`.
    pub fn add_txt(&self, name: &str, value: &str) {
        self.zone()
            .txt
            .entry(key(name))
            .or_default()
            .push(value.to_owned());
    }

    /// Removes the in-memory TXT records of `name` (files in the TXT directory stay).
    pub fn clear_txt(&self, name: &str) {
        self.zone().txt.remove(&key(name));
    }

    /// Replaces the CAA RRset of `name`; an empty list removes it. Values are sent verbatim, so
    /// malformed values reach the client as written.
    pub fn set_caa(&self, name: &str, properties: Vec<(u8, &str, &str)>) {
        let properties: Vec<CaaProperty> = properties
            .into_iter()
            .map(|(flags, tag, value)| (flags, tag.to_owned(), value.to_owned()))
            .collect();
        let mut zone = self.zone();
        if properties.is_empty() {
            zone.caa.remove(&key(name));
        } else {
            zone.caa.insert(key(name), properties);
        }
    }

    /// Makes every query for `name` (any type) answer SERVFAIL.
    pub fn set_servfail(&self, name: &str) {
        self.zone().servfail.insert(key(name));
    }

    /// Undoes [`Self::set_servfail`].
    pub fn clear_servfail(&self, name: &str) {
        self.zone().servfail.remove(&key(name));
    }

    fn zone(&self) -> MutexGuard<'_, Zone> {
        lock(&self.zone)
    }
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A panic while holding the lock cannot leave the maps half-updated in a way that matters
/// for tests, so a poisoned lock is simply taken over.
fn lock(zone: &Mutex<Zone>) -> MutexGuard<'_, Zone> {
    zone.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Binds UDP on a random port, then TCP on the same port; retries when TCP's is taken.
async fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = respond(&zone, &buf[..len], Some(UDP_LIMIT)) {
            // A lost reply is what UDP does anyway; the client retries.
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Mutex<Zone>>) {
    // Connection tasks live in the set, so aborting this task closes them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_tcp_connection(stream, zone.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// RFC 1035 §4.2.2: each TCP message is preceded by a two-octet length.
async fn serve_tcp_connection(mut stream: TcpStream, zone: Arc<Mutex<Zone>>) -> io::Result<()> {
    loop {
        let len = stream.read_u16().await?;
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await?;
        let Some(reply) = respond(&zone, &buf, None) else {
            return Ok(());
        };
        let reply_len = u16::try_from(reply.len()).map_err(io::Error::other)?;
        stream.write_u16(reply_len).await?;
        stream.write_all(&reply).await?;
    }
}

/// Builds the encoded reply to one query, or `None` when the query cannot be parsed.
fn respond(zone: &Mutex<Zone>, query: &[u8], limit: Option<usize>) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = answer(&lock(zone), &request);
    let encoded = reply.to_vec().ok()?;
    match limit {
        Some(limit) if encoded.len() > limit => {
            reply.answers.clear();
            reply.metadata.truncation = true;
            reply.to_vec().ok()
        }
        _ => Some(encoded),
    }
}

fn answer(zone: &Zone, request: &Message) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_available = true;
    reply.add_queries(request.queries.iter().cloned());
    let Some(query) = request.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply;
    };
    let name = key(&query.name().to_ascii());
    if zone.servfail.contains(&name) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply;
    }
    // TTL 0: nothing downstream may cache, so a record changed between attempts is seen.
    let records = zone
        .rdata(&name, query.query_type())
        .into_iter()
        .map(|rdata| Record::from_rdata(query.name().clone(), 0, rdata));
    reply.add_answers(records);
    reply
}

impl Zone {
    fn rdata(&self, name: &str, kind: RecordType) -> Vec<RData> {
        match kind {
            RecordType::A => self.addresses_a(name),
            RecordType::AAAA => self
                .aaaa
                .get(name)
                .into_iter()
                .flatten()
                .map(|ip| RData::AAAA(AAAA(*ip)))
                .collect(),
            RecordType::TXT => self
                .txt_values(name)
                .into_iter()
                .map(|value| RData::TXT(TXT::new(split_character_strings(&value))))
                .collect(),
            RecordType::CAA => self
                .caa
                .get(name)
                .into_iter()
                .flatten()
                .map(encode_caa)
                .collect(),
            _ => Vec::new(),
        }
    }

    fn addresses_a(&self, name: &str) -> Vec<RData> {
        let explicit = self.a.get(name);
        let has_own_address = explicit.is_some() || self.aaaa.contains_key(name);
        let ips: Vec<Ipv4Addr> = match (explicit, self.default_a) {
            (Some(ips), _) => ips.clone(),
            (None, Some(default)) if !has_own_address => vec![default],
            _ => Vec::new(),
        };
        ips.into_iter().map(|ip| RData::A(A(ip))).collect()
    }

    fn txt_values(&self, name: &str) -> Vec<String> {
        let mut values = self.txt.get(name).cloned().unwrap_or_default();
        if let Some(dir) = &self.txt_dir {
            values.extend(read_txt_file(dir, name));
        }
        values
    }
}

/// Reads `<dir>/<name>`: one TXT value per line, blank lines ignored. A missing file is simply
/// no records. Names that could escape the directory are ignored.
fn read_txt_file(dir: &Path, name: &str) -> Vec<String> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Vec::new();
    }
    std::fs::read_to_string(dir.join(name))
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 1035 §3.3.14: a TXT record is a sequence of character-strings of at most 255 octets.
fn split_character_strings(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    if bytes.len() <= 255 {
        return vec![value.to_owned()];
    }
    bytes
        .chunks(255)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect()
}

/// RFC 8659 §4.1 wire form: flags, tag length, tag, value. Sent as opaque RDATA so that the
/// test controls every byte, including malformed values.
fn encode_caa((flags, tag, value): &CaaProperty) -> RData {
    let mut wire = Vec::with_capacity(2 + tag.len() + value.len());
    wire.push(*flags);
    wire.push(u8::try_from(tag.len()).unwrap_or(u8::MAX));
    wire.extend_from_slice(tag.as_bytes());
    wire.extend_from_slice(value.as_bytes());
    RData::Unknown {
        code: RecordType::CAA,
        rdata: NULL::with(wire),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    async fn ask_udp(server: &TestDnsServer, name: &str, kind: RecordType) -> Message {
        let mut query = Message::query();
        query.metadata.id = 7;
        query.add_query(Query::query(Name::from_str(name).unwrap(), kind));
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket
            .send_to(&query.to_vec().unwrap(), server.addr())
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        let (len, _) = socket.recv_from(&mut buf).await.unwrap();
        Message::from_vec(&buf[..len]).unwrap()
    }

    async fn ask_tcp(server: &TestDnsServer, name: &str, kind: RecordType) -> Message {
        let mut query = Message::query();
        query.metadata.id = 9;
        query.add_query(Query::query(Name::from_str(name).unwrap(), kind));
        let bytes = query.to_vec().unwrap();
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_u16(bytes.len() as u16).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0; len as usize];
        stream.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    }

    fn txt_strings(reply: &Message) -> Vec<String> {
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn default_a_explicit_addresses_and_empty_unknown_types() {
        let server = TestDnsServer::start().await.unwrap();
        let reply = ask_udp(&server, "anything.test.", RecordType::A).await;
        assert_eq!(reply.metadata.id, 7);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(&reply.answers[0].data, &RData::A(A(Ipv4Addr::LOCALHOST)));

        server.set_a("Host.Test", Ipv4Addr::new(10, 0, 0, 1));
        let reply = ask_tcp(&server, "host.test.", RecordType::A).await;
        assert_eq!(reply.metadata.id, 9);
        assert_eq!(
            &reply.answers[0].data,
            &RData::A(A(Ipv4Addr::new(10, 0, 0, 1)))
        );

        server.set_aaaa("six.test", Ipv6Addr::LOCALHOST);
        let reply = ask_udp(&server, "six.test.", RecordType::A).await;
        assert!(
            reply.answers.is_empty(),
            "a name with AAAA gets no default A"
        );
        let reply = ask_udp(&server, "six.test.", RecordType::AAAA).await;
        assert_eq!(
            &reply.answers[0].data,
            &RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))
        );

        let reply = ask_udp(&server, "anything.test.", RecordType::MX).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());

        let server = server.with_default_a(None);
        let reply = ask_udp(&server, "anything.test.", RecordType::A).await;
        assert!(reply.answers.is_empty());
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    }

    #[tokio::test]
    async fn txt_from_memory_and_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let server = TestDnsServer::start()
            .await
            .unwrap()
            .with_txt_dir(dir.path());
        server.add_txt("_acme-challenge.a.test", "one");
        server.add_txt("_acme-challenge.a.test", "two");
        std::fs::write(
            dir.path().join("_acme-challenge.a.test"),
            "from-file\n\n  also  \n",
        )
        .unwrap();
        let reply = ask_udp(&server, "_acme-challenge.a.test.", RecordType::TXT).await;
        assert_eq!(txt_strings(&reply), ["one", "two", "from-file", "also"]);

        server.clear_txt("_acme-challenge.a.test");
        std::fs::remove_file(dir.path().join("_acme-challenge.a.test")).unwrap();
        let reply = ask_tcp(&server, "_acme-challenge.a.test.", RecordType::TXT).await;
        assert!(txt_strings(&reply).is_empty());
    }

    #[tokio::test]
    async fn oversized_udp_answers_are_truncated_and_complete_over_tcp() {
        let server = TestDnsServer::start().await.unwrap();
        let long = "x".repeat(300);
        for _ in 0..3 {
            server.add_txt("big.test", &long);
        }
        let reply = ask_udp(&server, "big.test.", RecordType::TXT).await;
        assert!(reply.metadata.truncation);
        assert!(reply.answers.is_empty());
        let reply = ask_tcp(&server, "big.test.", RecordType::TXT).await;
        assert_eq!(txt_strings(&reply), vec![long.clone(), long.clone(), long]);
    }

    #[tokio::test]
    async fn servfail_and_caa_wire_form() {
        let server = TestDnsServer::start().await.unwrap();
        server.set_servfail("broken.test");
        let reply = ask_udp(&server, "broken.test.", RecordType::CAA).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        server.clear_servfail("broken.test");
        let reply = ask_udp(&server, "broken.test.", RecordType::CAA).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);

        server.set_caa("ca.test", vec![(128, "issue", "ca.example; accounturi=x")]);
        let reply = ask_udp(&server, "ca.test.", RecordType::CAA).await;
        match &reply.answers[0].data {
            RData::CAA(caa) => {
                assert!(caa.issuer_critical);
                assert_eq!(caa.tag, "issue");
                assert_eq!(caa.value, b"ca.example; accounturi=x");
            }
            other => panic!("expected CAA, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn stops_when_dropped() {
        let server = TestDnsServer::start().await.unwrap();
        let addr = server.addr();
        drop(server);
        // The abort lands at the tasks' next await point; give the runtime a moment.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
