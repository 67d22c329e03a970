//! Transaction-block state. SKELETON.
#[derive(Debug, Default)]
pub struct TransactionState;
