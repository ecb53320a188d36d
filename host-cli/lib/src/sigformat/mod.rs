//! Signatures in the formats other verifiers read: OpenPGP ([`openpgp`]).

pub mod openpgp;
