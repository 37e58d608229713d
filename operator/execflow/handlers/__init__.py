"""The controllers: per kind, which snapshot to take, which pure decisions to ask, which writes
to make; the scheduler's loop; and the kopf registration that starts them. Wiring only."""
