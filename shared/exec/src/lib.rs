//! Where the work runs, beside the models it runs: each model on its own OS threads
//! ([`model_thread`]), how busy they are, which the batchers read to close a batch as a
//! worker frees ([`model_load`]), and the bounded pool for the CPU work around them
//! ([`cpu_pool`]). Nothing here knows a stage, a port or a model type.

pub mod cpu_pool;
pub mod model_load;
pub mod model_thread;
