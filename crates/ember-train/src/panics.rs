//! Panics caught at Ember's boundaries, turned into messages.

/// The message of a panic's payload (`panic!` with a literal or a formatted string), for the
/// places that catch a panic and report it: a search trial, the guarded Burn logger, the CUDA
/// probe and the CLI's panic hook.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
