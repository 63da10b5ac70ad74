//! A nameserver on 127.0.0.1 for tests of custom domains: it answers TXT
//! questions from a zone the test fills in.
#![expect(clippy::unwrap_used, reason = "a test fixture fails loudly")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// TXT records by name (lower case, no trailing dot).
pub type Zone = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A nameserver on 127.0.0.1 that answers TXT questions from `zone`
/// (NXDOMAIN for a name it has nothing for). At most 500 queries.
pub async fn fake_dns(zone: Zone) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        for _ in 0..500 {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(answer) = dns_answer(&buf[..n], &zone) {
                let _ = socket.send_to(&answer, peer).await;
            }
        }
    });
    address
}

fn dns_answer(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then QTYPE and QCLASS.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let question_end = at + 4;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let name = labels.join(".");
    let values = zone.lock().unwrap().get(&name).cloned();
    let mut out = Vec::new();
    out.extend_from_slice(&query[0..2]); // id
    let rcode = if values.is_some() { 0 } else { 3 };
    out.extend_from_slice(&[0x81, 0x80 | rcode]); // response, RD, RA
    let answers: Vec<String> = if qtype == 16 {
        values.unwrap_or_default()
    } else {
        Vec::new()
    };
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&u16::try_from(answers.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for value in answers {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 0]);
        let data = value.as_bytes();
        out.extend_from_slice(&u16::try_from(data.len() + 1).unwrap().to_be_bytes());
        out.push(u8::try_from(data.len()).unwrap());
        out.extend_from_slice(data);
    }
    Some(out)
}
