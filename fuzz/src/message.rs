use imgfeat_core::message::{DetectJob, ExtractJob, decode, encode};

/// Any bytes are a job or an error; a job read is written back in the current schema
/// and reads back the same, so no message changes meaning on its way through a retry.
pub fn decode_message(data: &[u8]) {
    if let Ok(job) = decode::<DetectJob>(data) {
        let again: DetectJob = decode(&encode(&job)).expect("a re-encoded detect job reads back");
        assert!(again == job, "a detect job changed on re-encoding");
    }
    if let Ok(job) = decode::<ExtractJob>(data) {
        let again: ExtractJob = decode(&encode(&job)).expect("a re-encoded extract job reads back");
        assert!(again == job, "an extract job changed on re-encoding");
    }
}
