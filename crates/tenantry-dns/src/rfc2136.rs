//! RFC 2136 dynamic updates and AXFR, both signed with a TSIG key (BIND,
//! Knot, PowerDNS with dnsupdate).
//!
//! Each operation opens its own TCP connection: servers close idle ones
//! (BIND after 30 s), and an apply is a handful of messages at most. A zone
//! is observed with one AXFR, never a query per name. Every record is
//! written and removed together with its ownership TXT record
//! (`_tenantry.<name>`, see `marks.rs`) in one UPDATE message, so the
//! server applies both or neither.

use crate::config::{self, TsigKey};
use crate::marks;
use crate::{Counters, Error, Found, Listing, Result, Wanted};
use futures::StreamExt;
use hickory_client::client::{Client, ClientHandle};
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::xfer::DnsHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::target::error_chain;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct Rfc2136 {
    server: SocketAddr,
    key: TsigKey,
}

impl Rfc2136 {
    pub(crate) async fn new(config: &crate::DnsConfig) -> Result<Rfc2136> {
        let (Some(server), Some(key_file)) = (&config.server, &config.tsig_key_file) else {
            return Err(Error::Config("provider `rfc2136` needs `server` and `tsig_key_file`".to_string()));
        };
        let text = config::read_secret_file(key_file, "TSIG key file")?;
        let key = config::parse_tsig_key(&text, key_file)?;
        // `host:port`, `[v6]:port`, or a bare host or address (port 53).
        let with_port = if let Ok(address) = server.parse::<std::net::IpAddr>() {
            SocketAddr::new(address, 53).to_string()
        } else if server.parse::<SocketAddr>().is_ok()
            || server.rsplit_once(':').is_some_and(|(host, port)| !host.contains(':') && port.parse::<u16>().is_ok())
        {
            server.clone()
        } else {
            format!("{server}:53")
        };
        let server = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| Error::Config(format!("`server = \"{server}\"`: {e}")))?
            .next()
            .ok_or_else(|| Error::Config(format!("`server = \"{server}\"` resolves to no address")))?;
        let rfc = Rfc2136 { server, key };
        // Fail at connect, not at the first write, when the algorithm is unusable.
        rfc.signer()?;
        Ok(rfc)
    }

    fn signer(&self) -> Result<TSigner> {
        let bad = |detail: String| Error::Config(format!("TSIG key `{}`: {detail}", self.key.name));
        let algorithm_name = Name::from_ascii(&self.key.algorithm).map_err(|e| bad(e.to_string()))?;
        let algorithm = TsigAlgorithm::from_name(algorithm_name);
        algorithm.output_len().map_err(|_| {
            bad(format!(
                "algorithm `{}` is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512",
                self.key.algorithm
            ))
        })?;
        let name = fqdn(&self.key.name).map_err(|e| bad(e.to_string()))?;
        TSigner::new(self.key.secret.clone(), algorithm, name, 300).map_err(|e| bad(e.to_string()))
    }

    fn server(&self) -> String {
        self.server.to_string()
    }

    /// A TCP client whose every message is TSIG-signed and whose responses are verified.
    async fn client(&self) -> Result<Client> {
        let signer = Arc::new(self.signer()?) as Arc<dyn hickory_proto::op::MessageFinalizer>;
        let (stream, handle) = TcpClientStream::new(self.server, None, Some(TIMEOUT), TokioRuntimeProvider::default());
        let (client, background) = Client::with_timeout(stream, handle, TIMEOUT, Some(signer))
            .await
            .map_err(|e| Error::Unavailable { server: self.server(), message: format!("DNS over TCP: {e}") })?;
        tokio::spawn(background);
        Ok(client)
    }

    /// Turn a transport error into a clear one: a response the TSIG verifier
    /// rejects (BIND answers a bad key unsigned, with BADKEY or BADSIG) names the key.
    fn failure(&self, operation: &str, text: String) -> Error {
        let lower = text.to_ascii_lowercase();
        // hickory reports an unsigned answer (BIND's reply to a bad key) as a truncated MAC.
        let text = if lower.contains("truncated hmac") {
            "the answer carries no valid signature: the server does not know this key or its secret differs (BADKEY/BADSIG)"
                .to_string()
        } else {
            text
        };
        if lower.contains("tsig") || lower.contains("hmac") {
            Error::Tsig { key: self.key.name.clone(), server: self.server(), detail: format!("{operation}: {text}") }
        } else {
            Error::Unavailable { server: self.server(), message: format!("{operation}: {text}") }
        }
    }

    fn rcode_error(&self, operation: &str, code: ResponseCode) -> Error {
        match code {
            ResponseCode::NotAuth => Error::Tsig {
                key: self.key.name.clone(),
                server: self.server(),
                detail: format!("{operation}: NOTAUTH (unknown key or bad signature)"),
            },
            ResponseCode::Refused => Error::Refused {
                server: self.server(),
                operation: operation.to_string(),
                message: format!(
                    "REFUSED: the zone's update-policy or allow-transfer does not grant TSIG key `{}`",
                    self.key.name
                ),
            },
            other => Error::Refused {
                server: self.server(),
                operation: operation.to_string(),
                message: format!("{other} ({})", u16::from(other)),
            },
        }
    }

    /// The whole zone by one AXFR. A zone the server refuses to transfer
    /// (REFUSED, or NOTAUTH: "not authoritative", which servers also use for
    /// a bad signature) and does not answer for with authority does not
    /// exist there (`Error::NoZone`): one SOA query tells it apart from a
    /// transfer the zone's policy does not grant the key, and from a key the
    /// server does not know (whose answers fail verification).
    pub(crate) async fn list(&self, zone: &str, counters: &Counters) -> Result<Listing> {
        let operation = format!("AXFR of {zone}");
        let refusal = match self.transfer(zone, &operation, counters).await? {
            Transfer::Done(listing) => return Ok(listing),
            Transfer::Answered(code @ (ResponseCode::Refused | ResponseCode::NotAuth)) => {
                self.rcode_error(&operation, code)
            }
            Transfer::Answered(code) => return Err(self.rcode_error(&operation, code)),
            Transfer::NoSoa => Error::Refused {
                server: self.server(),
                operation,
                message: format!("no SOA: the server is not authoritative for `{zone}`"),
            },
        };
        self.unless_missing(zone, refusal, counters).await
    }

    /// `refusal` as it is when the server serves `zone`, else `Error::NoZone`.
    async fn unless_missing<T>(&self, zone: &str, refusal: Error, counters: &Counters) -> Result<T> {
        if self.serves(zone, counters).await? {
            return Err(refusal);
        }
        Err(Error::NoZone {
            zone: zone.to_string(),
            server: self.server(),
            detail: "the server does not answer for it with authority".to_string(),
        })
    }

    async fn transfer(&self, zone: &str, operation: &str, counters: &Counters) -> Result<Transfer> {
        let origin = fqdn(zone).map_err(|e| Error::Config(format!("zone `{zone}`: {e}")))?;
        let mut client = self.client().await?;
        counters.read();
        let mut stream = client.zone_transfer(origin, None);
        let mut listing = Listing::default();
        while let Some(response) = stream.next().await {
            let response = match response {
                Ok(response) => response,
                Err(error) => match refused(&error) {
                    Some(code) => return Ok(Transfer::Answered(code)),
                    None => return Err(self.failure(operation, client_error(&error))),
                },
            };
            if response.response_code() != ResponseCode::NoError {
                return Ok(Transfer::Answered(response.response_code()));
            }
            for record in response.answers() {
                if let Some(found) = found(record) {
                    listing.records.push(found);
                }
            }
        }
        // The SOA opens and closes an AXFR: keep one.
        let mut seen_soa = false;
        listing.records.retain(|r| r.rtype != "SOA" || !std::mem::replace(&mut seen_soa, true));
        Ok(if seen_soa { Transfer::Done(listing) } else { Transfer::NoSoa })
    }

    /// Whether the server answers for `zone`'s SOA with authority.
    async fn serves(&self, zone: &str, counters: &Counters) -> Result<bool> {
        let origin = fqdn(zone).map_err(|e| Error::Config(format!("zone `{zone}`: {e}")))?;
        let mut client = self.client().await?;
        counters.read();
        let operation = format!("SOA query for {zone}");
        match client.query(origin, DNSClass::IN, RecordType::SOA).await {
            Ok(response) => Ok(response.response_code() == ResponseCode::NoError
                && response.authoritative()
                && response.answers().iter().any(|r| r.record_type() == RecordType::SOA)),
            Err(error) if refused(&error).is_some() => Ok(false),
            Err(error) => Err(self.failure(&operation, client_error(&error))),
        }
    }

    /// Create or replace the record. A create requires the name to be unused
    /// (RFC 2136 §2.4.5), so a record someone added after the plan is never
    /// overwritten; when the name already holds exactly this record (a retried
    /// create) that is success. Update and adopt replace the rrset of the type
    /// in one message, so there is never a moment without the record.
    pub(crate) async fn put(&self, wanted: &Wanted, create: bool, counters: &Counters) -> Result<()> {
        let origin = fqdn(&wanted.zone).map_err(|e| Error::Config(format!("zone `{}`: {e}", wanted.zone)))?;
        let name = fqdn(&wanted.name).map_err(|e| Error::Unsupported(format!("name `{}`: {e}", wanted.name)))?;
        let rdata = match wanted.rtype.as_str() {
            "CNAME" => RData::CNAME(CNAME(
                fqdn(&wanted.content).map_err(|e| Error::Unsupported(format!("target `{}`: {e}", wanted.content)))?,
            )),
            "A" => RData::A(A(wanted
                .content
                .parse()
                .map_err(|e| Error::Unsupported(format!("address `{}`: {e}", wanted.content)))?)),
            other => return Err(Error::Unsupported(format!("record type {other} is not managed"))),
        };
        let record_type = rdata.record_type();
        let mark = fqdn(&marks::mark_name(&wanted.name))
            .map_err(|e| Error::Unsupported(format!("ownership record of `{}`: {e}", wanted.name)))?;
        let mut message = update(origin);
        if create {
            let mut unused = Record::update0(name.clone(), 0, RecordType::ANY);
            unused.set_dns_class(DNSClass::NONE);
            message.add_pre_requisite(unused);
        } else {
            let mut clear = Record::update0(name.clone(), 0, record_type);
            clear.set_dns_class(DNSClass::ANY);
            message.add_update(clear);
        }
        message.add_update(Record::from_rdata(name, wanted.ttl, rdata));
        // The ownership record, replaced in the same message (a stale one
        // left by hand, or an earlier owner's on a name now free, goes).
        let mut clear_mark = Record::update0(mark.clone(), 0, RecordType::TXT);
        clear_mark.set_dns_class(DNSClass::ANY);
        message.add_update(clear_mark);
        let strings = marks::txt_strings(&wanted.mark_words());
        message.add_update(Record::from_rdata(mark, wanted.ttl, RData::TXT(TXT::new(strings))));
        let verb = if create { "creating" } else { "replacing" };
        let operation = format!("{verb} {} {} → {}", wanted.name, wanted.rtype, wanted.content);
        match self.send(message, &wanted.zone, &operation, counters).await {
            Err(Error::Refused { message, .. }) if create && message.starts_with("YXDOMAIN") => {
                let listing = self.list(&wanted.zone, counters).await?;
                let at_name: Vec<&Found> = listing.records.iter().filter(|r| r.name == wanted.name).collect();
                let mark = marks::by_name(&listing.records).get(wanted.name.as_str()).copied();
                let already = at_name.len() == 1
                    && at_name.iter().all(|r| r.rtype == wanted.rtype && r.content == wanted.content)
                    && wanted.is_marked_by(mark);
                if already {
                    return Ok(());
                }
                Err(Error::Refused {
                    server: self.server(),
                    operation,
                    message: format!(
                        "`{}` already has records tenantry did not create ({}); plan again to see the conflict",
                        wanted.name,
                        at_name.iter().map(|r| format!("{} {}", r.rtype, r.content)).collect::<Vec<_>>().join(", ")
                    ),
                })
            }
            Ok(()) if !create && wanted.rtype == "CNAME" => self.confirm_cname(wanted, &operation, counters).await,
            other => other,
        }
    }

    /// Servers ignore, with NOERROR, a CNAME added next to other data at the
    /// name (RFC 2136 §3.4.2.2), and no prerequisite can exclude "any other
    /// type". A create is safe (its name must be unused); after a replace,
    /// one query confirms the CNAME is really there.
    async fn confirm_cname(&self, wanted: &Wanted, operation: &str, counters: &Counters) -> Result<()> {
        let name = fqdn(&wanted.name).map_err(|e| Error::Unsupported(format!("name `{}`: {e}", wanted.name)))?;
        let mut client = self.client().await?;
        counters.read();
        let response = client
            .query(name, DNSClass::IN, RecordType::CNAME)
            .await
            .map_err(|e| self.failure(operation, client_error(&e)))?;
        let targets: Vec<String> = response
            .answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::CNAME(target) => Some(config::normalize_name(&target.0.to_ascii())),
                _ => None,
            })
            .collect();
        if targets == [wanted.content.as_str()] {
            return Ok(());
        }
        Err(Error::Refused {
            server: self.server(),
            operation: operation.to_string(),
            message: format!(
                "the server ignored the CNAME: `{}` holds records of other types that tenantry did not create; remove them or drop the domain",
                wanted.name
            ),
        })
    }

    /// Delete the rrset of one type at one name, and its ownership record.
    pub(crate) async fn remove(&self, zone: &str, name: &str, rtype: &str, counters: &Counters) -> Result<()> {
        let origin = fqdn(zone).map_err(|e| Error::Config(format!("zone `{zone}`: {e}")))?;
        let owner = fqdn(name).map_err(|e| Error::Unsupported(format!("name `{name}`: {e}")))?;
        let mark = fqdn(&marks::mark_name(name)).map_err(|e| Error::Unsupported(format!("name `{name}`: {e}")))?;
        let record_type: RecordType =
            rtype.parse().map_err(|_| Error::Unsupported(format!("record type `{rtype}` is unknown")))?;
        let mut message = update(origin);
        for (name, record_type) in [(owner, record_type), (mark, RecordType::TXT)] {
            let mut clear = Record::update0(name, 0, record_type);
            clear.set_dns_class(DNSClass::ANY);
            message.add_update(clear);
        }
        self.send(message, zone, &format!("deleting {name} {rtype}"), counters).await
    }

    /// Send one UPDATE for `zone`. A refusal from a server that does not
    /// serve the zone says so (`Error::NoZone`).
    async fn send(&self, message: Message, zone: &str, operation: &str, counters: &Counters) -> Result<()> {
        let client = self.client().await?;
        counters.write();
        let mut responses = client.send(message);
        let response = responses
            .next()
            .await
            .ok_or_else(|| self.failure(operation, "the connection closed without an answer".to_string()))?;
        let code = match response {
            Ok(response) => response.response_code(),
            Err(error) => match refused_answer(&error) {
                Some(code) => code,
                None => return Err(self.failure(operation, error_chain(&error))),
            },
        };
        match code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::YXDomain => Err(Error::Refused {
                server: self.server(),
                operation: operation.to_string(),
                message: "YXDOMAIN: the name already exists".to_string(),
            }),
            ResponseCode::Refused | ResponseCode::NotAuth => {
                self.unless_missing(zone, self.rcode_error(operation, code), counters).await
            }
            code => Err(self.rcode_error(operation, code)),
        }
    }
}

/// How an AXFR ended.
enum Transfer {
    Done(Listing),
    /// The server answered with this error code.
    Answered(ResponseCode),
    /// The answer had no SOA: the server is not authoritative.
    NoSoa,
}

/// The response code of an error answer the client reported as an error
/// (REFUSED, NOTAUTH), rather than as a response.
fn refused(error: &hickory_client::ClientError) -> Option<ResponseCode> {
    match error.kind() {
        hickory_client::ClientErrorKind::Proto(inner) => refused_answer(inner),
        _ => None,
    }
}

fn refused_answer(error: &hickory_proto::ProtoError) -> Option<ResponseCode> {
    match error.kind() {
        hickory_proto::ProtoErrorKind::NoRecordsFound {
            response_code: code @ (ResponseCode::Refused | ResponseCode::NotAuth),
            ..
        } => Some(*code),
        _ => None,
    }
}

/// The text of a client error: its own Display says only "proto error".
fn client_error(error: &hickory_client::ClientError) -> String {
    match error.kind() {
        hickory_client::ClientErrorKind::Proto(inner) => error_chain(inner),
        hickory_client::ClientErrorKind::DnsSec(inner) => error_chain(inner),
        _ => error_chain(error),
    }
}

/// An empty UPDATE message for a zone.
fn update(origin: Name) -> Message {
    let mut zone = Query::new();
    zone.set_name(origin).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
    let mut message = Message::new();
    message.set_message_type(MessageType::Query).set_op_code(OpCode::Update).set_recursion_desired(false);
    message.add_zone(zone);
    message
}

fn fqdn(name: &str) -> std::result::Result<Name, hickory_proto::ProtoError> {
    let mut name = Name::from_ascii(name.trim_end_matches('.'))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The records of one AXFR response message in DNS wire format (what the
/// fuzz targets feed; `transfer` reads the same answers from the client).
#[cfg(feature = "fuzzing")]
pub(crate) fn listing_from_wire(bytes: &[u8]) -> Listing {
    let records = hickory_proto::op::Message::from_vec(bytes)
        .map(|message| message.answers().iter().filter_map(found).collect())
        .unwrap_or_default();
    Listing { records }
}

fn found(record: &Record) -> Option<Found> {
    let rtype = record.record_type().to_string();
    if rtype == "TSIG" || rtype == "OPT" {
        return None;
    }
    let content = match record.data() {
        RData::CNAME(target) => config::normalize_name(&target.0.to_ascii()),
        RData::A(address) => address.0.to_string(),
        RData::TXT(txt) => {
            let strings: Vec<String> = txt.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
            marks::txt_text(strings.iter().map(String::as_str))
        }
        other => other.to_string(),
    };
    Some(Found {
        name: config::normalize_name(&record.name().to_ascii()),
        rtype,
        content,
        ttl: record.ttl(),
        proxied: false,
        comment_marks: None,
        provider_id: None,
    })
}
