//! `imgfeat-serve`: synchronous inference over HTTP.
