//! AWS/ApplicationELB and AWS/NetworkELB metrics from HAProxy's counters.
