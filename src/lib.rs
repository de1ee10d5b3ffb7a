pub mod float;
pub mod engine;
pub mod linalg;
pub mod model;
pub mod optim;
pub mod rng;
