//! The six measurements of the issue, each with its baseline measured in the same run.

pub mod distant;
pub mod growth;
pub mod load;
pub mod percall;
pub mod sandbox;
pub mod scale;
