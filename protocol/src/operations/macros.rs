//! The two declaration macros behind [`super`]: `requests!` turns the operation table into the
//! request structs, the [`super::Request`] enum, [`super::Operation`], [`super::Action`] and the
//! typed request → reply pairing; `replies!` turns the reply table into the reply structs and
//! the [`super::Response`] enum.
//!
//! Both enums are encoded exactly as serde's derive encodes an enum of struct variants: postcard
//! writes the variant index (a varint) and then the fields in order. The variant index is the
//! row's position; each row also states it, and a compile-time check refuses a table whose rows
//! are out of order — appending is the only safe change.

/// Declares one struct per row (every field `pub`), in module scope.
macro_rules! declare_structs {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(<$lt:lifetime>)? {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    )*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name $(<$lt>)? {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }
    )*};
}

/// Fails the build unless the stated indexes are 0, 1, 2, … in row order.
macro_rules! check_order {
    ($what:literal: $($index:literal)*) => {
        const _: () = {
            let mut expected: u32 = 0;
            $(
                assert!($index == expected, concat!("the ", $what, " table is out of order"));
                expected += 1;
            )*
            let _ = expected;
        };
    };
}

/// Whether an action row is marked `grant` (a KMS GrantOperation).
macro_rules! grantable {
    () => {
        false
    };
    (grant) => {
        true
    };
}

/// A row's `full_log:` setting.
macro_rules! full_log {
    (served) => {
        true
    };
    (refused) => {
        false
    };
}

/// The operation table: see [`super`] for the row syntax. The leading `($)` passes a dollar
/// sign in, for the callback macro it defines.
macro_rules! requests {
    (($d:tt) $(
        $(#[doc = $doc:literal])*
        $op:ident $(<$lt:lifetime>)? = $index:literal {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        } -> $reply:ident,
        actions { $( $prefix:ident : $action:ident = $bit:literal $($grant:ident)? ),* $(,)? },
        gate |$r:ident| $gate:expr,
        full_log: $full:ident;
    )*) => {
        check_order!("operation": $($index)*);

        /// Calls `callback! { Name Name … }` with every operation's name, in wire order: code
        /// that must handle every operation (the token's dispatcher) is generated from it, so an
        /// operation added to the table is a compile error there until it is handled.
        #[macro_export]
        macro_rules! with_operations {
            ($d callback:ident) => {
                $d callback! { $($op)* }
            };
        }

        /// One struct per operation: the request's fields, in wire order.
        pub mod request {
            #[allow(unused_imports)]
            use super::*;
            declare_structs! {$(
                $(#[doc = $doc])*
                $op $(<$lt>)? { $( $(#[$fmeta])* $field : $fty ),* }
            )*}
        }

        /// Every request the token answers, one variant per operation in wire order.
        #[derive(Debug, Clone, PartialEq, Eq)]
        // Borrowed wire types: the large variants hold bounded inline lists; boxing needs an
        // allocator the firmware does not have, and a request lives once per frame.
        #[allow(clippy::large_enum_variant)]
        pub enum Request<'a> {
            $(
                $(#[doc = $doc])*
                $op(request::$op $(<$lt>)?),
            )*
        }

        /// An operation: its stable index (the variant index on the wire and in audit entries)
        /// and its KMS name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Operation {
            $( $(#[doc = $doc])* $op = $index, )*
        }

        impl Operation {
            /// Every operation, in wire order.
            pub const ALL: &'static [Operation] = &[$(Operation::$op),*];

            /// The operation's name (KMS's where KMS has it).
            pub const fn name(self) -> &'static str {
                match self { $(Operation::$op => stringify!($op),)* }
            }

            /// The operation with wire index `index`, if there is one.
            pub const fn from_index(index: u16) -> Option<Operation> {
                match index { $($index => Some(Operation::$op),)* _ => None }
            }

            /// The wire index.
            pub const fn index(self) -> u16 {
                self as u16
            }

            /// Whether the token still answers it while its audit log is full and refuses
            /// operations (force-audit mode): only what reads, trims or reaches the log.
            pub const fn served_when_log_full(self) -> bool {
                match self { $(Operation::$op => full_log!($full),)* }
            }

            /// The policy actions this operation is checked against (none for operations that
            /// name no key).
            pub const fn actions(self) -> &'static [Action] {
                match self { $(Operation::$op => &[$(Action::$action),*],)* }
            }
        }

        impl core::fmt::Display for Operation {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }

        /// A permission a key policy or a grant names, e.g. `kms:Encrypt`. Its discriminant is
        /// its bit in the `u64` action sets that policies and grants store.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Action {
            $($( $action = $bit, )*)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$($(Action::$action,)*)*];

            /// The action whose bit is `1 << index`, if any.
            pub const fn from_bit_index(index: u8) -> Option<Action> {
                match index { $($($bit => Some(Action::$action),)*)* _ => None }
            }

            /// The action's bit in a stored action set.
            pub const fn bit(self) -> u64 {
                1 << (self as u8)
            }

            /// The action's name in key policies: `kms:Encrypt`, `pkms:RetireKeyVersions`.
            pub const fn name(self) -> &'static str {
                match self { $($(Action::$action => concat!(stringify!($prefix), ":", stringify!($action)),)*)* }
            }

            /// Whether a grant may name it (KMS's GrantOperation values).
            pub const fn grantable(self) -> bool {
                match self { $($(Action::$action => grantable!($($grant)?),)*)* }
            }
        }

        /// Every action bit (what `kms:*` means).
        pub const ALL_ACTIONS: u64 = 0 $($(| (1u64 << $bit))*)*;

        /// The action bits a grant may name.
        pub const GRANT_OPERATIONS: u64 = {
            let mut bits = 0u64;
            let mut i = 0;
            while i < Action::ALL.len() {
                if Action::ALL[i].grantable() {
                    bits |= Action::ALL[i].bit();
                }
                i += 1;
            }
            bits
        };

        impl<'a> Request<'a> {
            /// The operation this request asks for.
            pub const fn operation(&self) -> Operation {
                match self { $(Request::$op(_) => Operation::$op,)* }
            }

            /// What the token checks before it runs this request (see [`Gate`]).
            pub fn gate(&self) -> Gate<'_> {
                match self { $(Request::$op(r) => r.gate(),)* }
            }
        }

        $(
            impl $(<$lt>)? request::$op $(<$lt>)? {
                /// What the token checks before running this request.
                #[allow(clippy::needless_lifetimes)]
                pub fn gate<'g>(&'g self) -> Gate<'g> {
                    let $r = self;
                    let _ = $r;
                    $gate
                }
            }

            impl<'a> From<request::$op $(<$lt>)?> for Request<'a> {
                fn from(r: request::$op $(<$lt>)?) -> Request<'a> {
                    Request::$op(r)
                }
            }

            impl<'a> Call<'a> for request::$op $(<$lt>)? {
                const OPERATION: Operation = Operation::$op;
                type Reply = kind::$reply;
            }
        )*

        impl serde::Serialize for Request<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Request::$op(r) => s.serialize_newtype_variant("Request", $index, stringify!($op), r),)*
                }
            }
        }

        impl<'de: 'a, 'a> serde::Deserialize<'de> for Request<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(core::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = Request<'a>;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str("a Pocket KMS request")
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Request<'a>, A::Error> {
                        use serde::de::VariantAccess;
                        let (index, variant): (u32, A::Variant) = data.variant()?;
                        match index {
                            $($index => variant.newtype_variant::<request::$op $(<$lt>)?>().map(Request::$op),)*
                            other => Err(serde::de::Error::invalid_value(
                                serde::de::Unexpected::Unsigned(other as u64),
                                &"the index of an operation this token knows",
                            )),
                        }
                    }
                }
                const NAMES: &[&str] = &[$(stringify!($op)),*];
                d.deserialize_enum("Request", NAMES, V(core::marker::PhantomData))
            }
        }
    };
}

/// The reply table: see [`super`] for the row syntax.
macro_rules! replies {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(<$lt:lifetime>)? = $index:literal {
            $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)?
        },
        audit |$r:ident| $audit:expr;
    )*) => {
        check_order!("reply": $($index)*);

        /// One struct per kind of successful answer, fields in wire order.
        pub mod reply {
            #[allow(unused_imports)]
            use super::*;
            declare_structs! {$(
                $(#[doc = $doc])*
                $name $(<$lt>)? { $( $(#[$fmeta])* $field : $fty ),* }
            )*}
        }

        /// One marker type per kind of answer, naming its reply struct for any lifetime.
        pub mod kind {
            $(
                $(#[doc = $doc])*
                pub enum $name {}

                impl super::ReplyKind for $name {
                    type Of<'a> = super::reply::$name $(<$lt>)?;
                }
            )*
        }

        /// Every successful answer, in wire order. Several operations may share one kind of
        /// answer (CreateKey and DescribeKey both answer [`reply::KeyMetadata`]).
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(clippy::large_enum_variant)] // see Request
        pub enum Response<'a> {
            $(
                $(#[doc = $doc])*
                $name(reply::$name $(<$lt>)?),
            )*
        }

        impl Response<'_> {
            /// The key and key version an answer names, for its audit entry (`None`, 0 when it
            /// names none).
            pub fn audit_key(&self) -> (Option<KeyId>, KeyVersion) {
                match self {
                    $(Response::$name(r) => {
                        let $r = r;
                        let _ = $r;
                        $audit
                    })*
                }
            }
        }

        $(
            impl<'a> From<reply::$name $(<$lt>)?> for Response<'a> {
                fn from(r: reply::$name $(<$lt>)?) -> Response<'a> {
                    Response::$name(r)
                }
            }

            impl<'a> FromResponse<'a> for reply::$name $(<$lt>)? {
                fn from_response(r: Response<'a>) -> Option<Self> {
                    if let Response::$name(x) = r { Some(x) } else { None }
                }
            }
        )*

        impl serde::Serialize for Response<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Response::$name(r) => s.serialize_newtype_variant("Response", $index, stringify!($name), r),)*
                }
            }
        }

        impl<'de: 'a, 'a> serde::Deserialize<'de> for Response<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(core::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = Response<'a>;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str("a Pocket KMS response")
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Response<'a>, A::Error> {
                        use serde::de::VariantAccess;
                        let (index, variant): (u32, A::Variant) = data.variant()?;
                        match index {
                            $($index => variant.newtype_variant::<reply::$name $(<$lt>)?>().map(Response::$name),)*
                            other => Err(serde::de::Error::invalid_value(
                                serde::de::Unexpected::Unsigned(other as u64),
                                &"the index of a reply this host knows",
                            )),
                        }
                    }
                }
                const NAMES: &[&str] = &[$(stringify!($name)),*];
                d.deserialize_enum("Response", NAMES, V(core::marker::PhantomData))
            }
        }
    };
}
