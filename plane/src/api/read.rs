//! A client's read: `GET` needs no Idempotency-Key and writes nothing, so
//! it bypasses the ledger. It reads the store (linearizable), so a read
//! sent after a write was acknowledged sees that write.

use super::{ApiNode, Client, Ctx, Purpose, Reply, error};
use crate::protocol::{ApiReply, ApiResponse, Msg, ResponseBody, Value, keys, status};
use crate::reply;
use crate::store::{Op, StoreRequest, Txn};

impl ApiNode {
    /// Reads resource `id` for `client`.
    pub(super) fn get(&mut self, ctx: &mut Ctx<'_>, client: Client, id: String) {
        if id.is_empty() || id.len() > crate::protocol::ApiOp::MAX_NAME_BYTES {
            let response = error(status::BAD_REQUEST, "an id must have 1 to 253 bytes");
            return self.answer_read(ctx, client, response);
        }
        let read = Txn::unconditional(vec![Op::Get {
            key: keys::resource(&id),
        }]);
        self.send_store(ctx, Purpose::Get(client), StoreRequest::Txn(read));
    }

    pub(super) fn on_get(&mut self, ctx: &mut Ctx<'_>, client: Client, reply: Reply) {
        let found = match reply {
            Reply::Store(response) => reply::txn(response).and_then(|txn| txn.gets()),
            _ => {
                let response = error(status::UNAVAILABLE, "could not read now: retry");
                return self.answer_read(ctx, client, response);
            }
        };
        let response = match found {
            Ok([Some(kv)]) => match kv.value {
                Value::Resource(resource) => ApiResponse {
                    status: status::OK,
                    body: ResponseBody::Resource(resource),
                },
                _ => error(status::UNAVAILABLE, "the store holds no resource there"),
            },
            Ok([None]) => error(status::NOT_FOUND, "no such resource"),
            Err(problem) => {
                problem.log("read");
                error(status::UNAVAILABLE, "could not read now: retry")
            }
        };
        self.answer_read(ctx, client, response);
    }

    /// A read's answer: never stored, never replayed, no key to publish.
    fn answer_read(&mut self, ctx: &mut Ctx<'_>, client: Client, response: ApiResponse) {
        let reply = ApiReply {
            request_id: client.request_id,
            response,
            replayed: false,
            key_ttl_ms: None,
            key_expires_at_ms: None,
        };
        ctx.send(client.node, Msg::ApiReply(reply));
    }
}
