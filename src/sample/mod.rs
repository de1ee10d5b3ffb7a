//! Using a trained model: the library API (`trained`: `Model`, `Generation`, `Score`), streams
//! stepped one character at a time as a batch (`sampler`), one stream's prompt, generator,
//! stop strings and limit (`stream`, `stop`), the choice of the next character (`pick`), and
//! the `charrnn sample` command (`command`). The arithmetic has a fixed order and our own exp,
//! so a seed gives the same text on every machine, and a stream gives the same text alone or
//! in a batch.
//!
//! Owns generation. Does not own training, the file format (`checkpoint`) or the batched
//! engine (`engine`).

pub mod batch;
pub mod command;
pub mod pick;
pub mod sampler;
pub mod stop;
pub mod stream;
pub mod trained;
pub mod weights;

pub use batch::Batch;
pub use pick::{pick, Pick};
pub use sampler::{Sampler, Saved};
pub use stream::{Finish, Logprob, Scores, Settings, Step, Stream};
pub use trained::{Generation, Model, Score};
pub use weights::Precision;
