//! Flash storage for shoal (in progress): see the module docs as they land.
