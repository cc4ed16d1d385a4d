//! A client's reads: `GET` of one resource and `LIST` of a page of them.
//! Reads need no Idempotency-Key and write nothing, so they bypass the
//! ledger. Each is one store transaction (linearizable) that reads the
//! desired state and the status together: a read sent after a write was
//! acknowledged sees that write, and the status shown is the one the store
//! held with the desired state shown.
//!
//! A list reads a bounded range of resources and a bounded range of
//! statuses after the same cursor with the same limit (the store cannot
//! join, and the page's ids are not known before the read); why that gives
//! every item its status is argued at `decode::page`.

use super::{ApiNode, Client, Ctx, Purpose, Reply, decode, error};
use crate::protocol::{ApiOp, ApiReply, ApiResponse, Msg, ResponseBody, keys, status};
use crate::store::{Op, StoreRequest, Txn};

impl ApiNode {
    /// Reads resource `id` and its status for `client`.
    pub(super) fn get(&mut self, ctx: &mut Ctx<'_>, client: Client, id: String) {
        if !valid_id(&id) {
            let response = error(status::BAD_REQUEST, "an id must have 1 to 253 bytes");
            return self.answer_read(ctx, client, response);
        }
        let read = Txn::unconditional(vec![
            Op::Get {
                key: keys::resource(&id),
            },
            Op::Get {
                key: keys::status(&id),
            },
        ]);
        self.send_store(ctx, Purpose::Get(client), StoreRequest::Txn(read));
    }

    pub(super) fn on_get(&mut self, ctx: &mut Ctx<'_>, client: Client, reply: Reply) {
        let Reply::Store(response) = reply else {
            return self.answer_read(ctx, client, unavailable());
        };
        let response = match decode::get(response) {
            Ok(Some(view)) => ApiResponse {
                status: status::OK,
                body: ResponseBody::Read(view),
            },
            Ok(None) => error(status::NOT_FOUND, "no such resource"),
            Err(problem) => {
                problem.log("read");
                unavailable()
            }
        };
        self.answer_read(ctx, client, response);
    }

    /// Reads the page of at most `limit` resources after `after`, with
    /// their statuses, for `client`. A limit outside `1..=MAX_PAGE_LIMIT`
    /// is refused (400), not clamped; so is a cursor that is not an id.
    pub(super) fn list(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: Client,
        after: Option<String>,
        limit: u32,
    ) {
        if !(1..=ApiOp::MAX_PAGE_LIMIT).contains(&limit) {
            let message = format!("limit must be 1 to {}, not {limit}", ApiOp::MAX_PAGE_LIMIT);
            return self.answer_read(ctx, client, error(status::BAD_REQUEST, &message));
        }
        if after.as_deref().is_some_and(|after| !valid_id(after)) {
            let message = "a cursor (after) is an id: it must have 1 to 253 bytes";
            return self.answer_read(ctx, client, error(status::BAD_REQUEST, message));
        }
        let read = Txn::unconditional(vec![
            Op::Range {
                prefix: keys::RESOURCES.to_string(),
                after: after.as_deref().map(keys::resource),
                limit,
            },
            Op::Range {
                prefix: keys::STATUSES.to_string(),
                after: after.as_deref().map(keys::status),
                limit,
            },
        ]);
        self.send_store(ctx, Purpose::List(client), StoreRequest::Txn(read));
    }

    pub(super) fn on_list(&mut self, ctx: &mut Ctx<'_>, client: Client, reply: Reply) {
        let Reply::Store(response) = reply else {
            return self.answer_read(ctx, client, unavailable());
        };
        let response = match decode::list(response) {
            Ok(page) => ApiResponse {
                status: status::OK,
                body: ResponseBody::Page {
                    items: page.items,
                    next: page.next,
                },
            },
            Err(problem) => {
                problem.log("list");
                unavailable()
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
        ctx.send(client.node, Msg::ApiReply(Box::new(reply)));
    }
}

/// An id as requests name it (and as a list's cursor is one).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= ApiOp::MAX_NAME_BYTES
}

/// A read that could not be done now (no reply in time, or one that does
/// not fit): 503, and the client retries.
fn unavailable() -> ApiResponse {
    error(status::UNAVAILABLE, "could not read now: retry")
}
