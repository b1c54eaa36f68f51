//! Tests across the fleet's services live in `tests/`: the deployment files loaded with
//! each service's own settings type, and the dashboard's queries checked against the
//! metrics every service registers. Kept out of the libraries so none of them depends
//! on a service, not even for its tests.
