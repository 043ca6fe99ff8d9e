"""Evaluation metrics for trained GNM runs."""
