//! Per-item work inside a batch, each item behind its own panic boundary: a bug that
//! one odd image trips (in a decoder, a resizer, the crop encoder) fails that image
//! alone, and its batch-mates go on to be stored and acked.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use imgfeat_core::{FailureKind, FailureReason};

/// Runs `f`, turning a panic into a permanent `Internal` failure: retrying the same
/// image would trip the same bug, so it is dead-lettered with the panic's message.
pub(crate) fn isolated<R>(
    f: impl FnOnce() -> Result<R, FailureReason>,
) -> Result<R, FailureReason> {
    // The closure owns or borrows only this item's data; whatever a panic leaves half
    // made is dropped with the item, so no shared state is observed broken afterwards.
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(FailureReason::new(
            FailureKind::Internal,
            format!("panicked: {}", panic_message(payload.as_ref())),
        ))
    })
}

/// Applies `f` to every item, each isolated: one result per item, in order.
pub(crate) fn each_isolated<T, R>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, FailureReason>,
) -> Vec<Result<R, FailureReason>> {
    items.into_iter().map(|item| isolated(|| f(item))).collect()
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_item_fails_alone_with_its_message() {
        let results = each_isolated(vec![1, 2, 3, 4], |i| {
            if i == 3 {
                panic!("item {i} is poison");
            }
            if i == 4 {
                return Err(FailureReason::new(FailureKind::Corrupt, "bad bytes"));
            }
            Ok(i * 10)
        });
        assert_eq!(results[0], Ok(10));
        assert_eq!(results[1], Ok(20));
        let poison = results[2].as_ref().unwrap_err();
        assert_eq!(poison.kind, FailureKind::Internal);
        assert_eq!(poison.message, "panicked: item 3 is poison");
        assert_eq!(results[3].as_ref().unwrap_err().kind, FailureKind::Corrupt);
    }

    #[test]
    fn static_panic_messages_are_kept_too() {
        let r: Result<(), _> = isolated(|| panic!("fixed"));
        assert_eq!(r.unwrap_err().message, "panicked: fixed");
    }
}
