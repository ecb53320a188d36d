//! The SSH agent protocol's messages (draft-miller-ssh-agent): each is `uint32 length || byte
//! type || contents`. `pkms ssh-agent` answers REQUEST_IDENTITIES and SIGN_REQUEST and fails
//! every other request (adding and removing keys, locking, extensions) with SSH_AGENT_FAILURE.

use std::io::{self, Read};

use ssh_encoding::{Decode as _, Encode as _};

use super::FormatError;

/// SSH_AGENT_FAILURE.
pub const FAILURE: u8 = 5;
/// SSH_AGENTC_REQUEST_IDENTITIES.
pub const REQUEST_IDENTITIES: u8 = 11;
/// SSH_AGENT_IDENTITIES_ANSWER.
pub const IDENTITIES_ANSWER: u8 = 12;
/// SSH_AGENTC_SIGN_REQUEST.
pub const SIGN_REQUEST: u8 = 13;
/// SSH_AGENT_SIGN_RESPONSE.
pub const SIGN_RESPONSE: u8 = 14;
/// The largest message read (OpenSSH's agent takes at most 256 KiB).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// A request the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// List the keys.
    Identities,
    /// Sign `data` with the key whose public key blob is `key_blob`.
    Sign {
        /// The key's SSH public key blob.
        key_blob: Vec<u8>,
        /// What to sign.
        data: Vec<u8>,
        /// SSH_AGENT_RSA_SHA2_* flags (meaningless for ECDSA and Ed25519 keys).
        flags: u32,
    },
    /// Any other message type: answered with SSH_AGENT_FAILURE.
    Other(u8),
}

/// Reads one message's body (type and contents). `Ok(None)` when the peer closed the
/// connection between messages; a message over [`MAX_MESSAGE`] is an error.
pub fn read_message<R: Read>(input: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("agent message of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Parses a message body.
pub fn parse_request(body: &[u8]) -> Result<Request, FormatError> {
    let bad = |e: ssh_encoding::Error| FormatError::Malformed(format!("malformed agent request: {e}"));
    let (&kind, mut rest) =
        body.split_first().ok_or_else(|| FormatError::Malformed("empty agent request".into()))?;
    match kind {
        REQUEST_IDENTITIES => Ok(Request::Identities),
        SIGN_REQUEST => {
            let key_blob = Vec::<u8>::decode(&mut rest).map_err(bad)?;
            let data = Vec::<u8>::decode(&mut rest).map_err(bad)?;
            let flags = u32::decode(&mut rest).map_err(bad)?;
            if !rest.is_empty() {
                return Err(FormatError::Malformed("trailing bytes after a sign request".into()));
            }
            Ok(Request::Sign { key_blob, data, flags })
        }
        other => Ok(Request::Other(other)),
    }
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// SSH_AGENT_FAILURE, framed.
pub fn failure() -> Vec<u8> {
    frame(vec![FAILURE])
}

/// SSH_AGENT_IDENTITIES_ANSWER listing `(key blob, comment)` pairs, framed.
pub fn identities_answer(keys: &[(Vec<u8>, String)]) -> Vec<u8> {
    let mut body = vec![IDENTITIES_ANSWER];
    // Encoding into a Vec cannot fail.
    let _ = (keys.len() as u32).encode(&mut body);
    for (blob, comment) in keys {
        let _ = blob.encode(&mut body);
        let _ = comment.as_str().encode(&mut body);
    }
    frame(body)
}

/// SSH_AGENT_SIGN_RESPONSE carrying `signature` (`string algorithm || string blob`), framed.
pub fn sign_response(signature: &ssh_key::Signature) -> Vec<u8> {
    let mut sig = Vec::new();
    let _ = signature.encode(&mut sig);
    let mut body = vec![SIGN_RESPONSE];
    let _ = sig.encode(&mut body);
    frame(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_request(&[REQUEST_IDENTITIES]).unwrap(), Request::Identities);
        let mut body = vec![SIGN_REQUEST];
        b"blob".as_slice().encode(&mut body).unwrap();
        b"data".as_slice().encode(&mut body).unwrap();
        7u32.encode(&mut body).unwrap();
        assert_eq!(
            parse_request(&body).unwrap(),
            Request::Sign { key_blob: b"blob".to_vec(), data: b"data".to_vec(), flags: 7 }
        );
        assert!(parse_request(&body[..body.len() - 1]).is_err(), "truncated");
        let mut long = body.clone();
        long.push(0);
        assert!(parse_request(&long).is_err(), "trailing bytes");
        assert!(parse_request(&[]).is_err());
        // Add identity (17), remove all (19), lock (22), extension (27).
        for t in [17u8, 19, 22, 27] {
            assert_eq!(parse_request(&[t, 0, 0]).unwrap(), Request::Other(t));
        }
    }

    #[test]
    fn messages_are_framed() {
        assert_eq!(failure(), vec![0, 0, 0, 1, FAILURE]);
        let answer = identities_answer(&[(b"kb".to_vec(), "c".into())]);
        assert_eq!(answer, vec![0, 0, 0, 16, 12, 0, 0, 0, 1, 0, 0, 0, 2, b'k', b'b', 0, 0, 0, 1, b'c']);
        let mut input = &answer[..];
        assert_eq!(read_message(&mut input).unwrap().unwrap(), answer[4..].to_vec());
        assert_eq!(read_message(&mut input).unwrap(), None, "clean end between messages");
        assert!(read_message(&mut &[0u8, 0][..]).is_err(), "cut inside a length");
        assert!(read_message(&mut &[0u8, 0, 0, 0][..]).is_err(), "empty message");
        assert!(read_message(&mut &[0u8, 0x10, 0, 1][..]).is_err(), "over the limit");
        assert!(read_message(&mut &[0u8, 0, 0, 3, 1][..]).is_err(), "cut inside a body");
    }

    #[test]
    fn messages_up_to_256_kib_are_read_and_interruptions_retried() {
        let mut big = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
        big.resize(4 + MAX_MESSAGE, 1);
        assert_eq!(read_message(&mut &big[..]).unwrap().map(|b| b.len()), Some(256 * 1024));
        let mut over = ((MAX_MESSAGE + 1) as u32).to_be_bytes().to_vec();
        over.resize(4 + MAX_MESSAGE + 1, 1);
        assert!(read_message(&mut &over[..]).is_err());
        let framed = failure();
        let mut r = super::super::tests::Interrupting(&framed, false);
        assert_eq!(read_message(&mut r).unwrap(), Some(vec![FAILURE]));
        let mut broken = std::io::BufReader::new(Broken);
        assert_eq!(read_message(&mut broken).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn sign_responses_carry_the_encoded_signature() {
        let sig = ssh_key::Signature::new(ssh_key::Algorithm::Ed25519, vec![9u8; 64]).unwrap();
        let r = sign_response(&sig);
        assert_eq!(r[4], SIGN_RESPONSE);
        let mut rest = &r[5..];
        let inner = Vec::<u8>::decode(&mut rest).unwrap();
        assert!(rest.is_empty());
        let mut inner_rest = &inner[..];
        assert_eq!(String::decode(&mut inner_rest).unwrap(), "ssh-ed25519");
        assert_eq!(Vec::<u8>::decode(&mut inner_rest).unwrap(), vec![9u8; 64]);
    }
}
