//! The one dispatcher: every request the gate admitted goes to its handler. Each request struct
//! implements [`Handle`] next to the code that does its work (`ops/`, `auth`, `policy`, `audit`);
//! [`dispatch`] is generated from the protocol's operation table, one arm per operation, so an
//! operation without a handler is a compile error ("the trait `Handle` is not implemented").

use pkms_protocol::{Request, Response};

use crate::audit::Log;
use crate::auth::Auth;
use crate::error::OpResult;
use crate::gate::Admitted;
use crate::ops::Buffers;
use crate::platform::Platform;
use crate::session::Sessions;
use crate::state::Core;

/// What a handler works with.
pub struct Cx<'t, 'b, 'r, P: Platform> {
    /// The token's state.
    pub core: &'t mut Core<P>,
    /// The buffers the answer borrows from.
    pub bufs: &'b mut Buffers,
    /// Whether the token is initialised, and the session.
    pub auth: &'t mut Auth,
    /// The audit log.
    pub log: &'t mut Log,
    /// The open sessions.
    pub sessions: &'t mut Sessions,
    /// The backup or restore in progress.
    pub transfer: &'t mut crate::backup::Transfer,
    /// The session the request arrived in (`None`: in the clear).
    pub slot: Option<usize>,
    /// The keys the request names, as the gate resolved them.
    pub admitted: &'t Admitted<'r>,
}

/// A request the token can run.
pub trait Handle {
    /// Runs the request; the answer borrows from `cx.bufs`.
    fn handle<'b, P: Platform>(&self, cx: Cx<'_, 'b, '_, P>) -> OpResult<Response<'b>>;
}

/// Implements [`Handle`] for request structs: `request::Name<'_> => |r, cx| expression;`.
macro_rules! handle {
    ($($ty:ty => |$r:ident, $cx:ident| $body:expr;)*) => {$(
        impl $crate::dispatch::Handle for $ty {
            fn handle<'b, P: $crate::platform::Platform>(
                &self,
                $cx: $crate::dispatch::Cx<'_, 'b, '_, P>,
            ) -> $crate::error::OpResult<pkms_protocol::Response<'b>> {
                let $r = self;
                $body
            }
        }
    )*};
}
pub(crate) use handle;

macro_rules! dispatcher {
    ($($op:ident)*) => {
        /// Runs an admitted request with its handler.
        pub fn dispatch<'b, P: Platform>(cx: Cx<'_, 'b, '_, P>, request: &Request<'_>) -> OpResult<Response<'b>> {
            match request {
                $(Request::$op(r) => Handle::handle(r, cx),)*
            }
        }
    };
}
pkms_protocol::with_operations!(dispatcher);
