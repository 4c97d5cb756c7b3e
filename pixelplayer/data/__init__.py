"""Datasets: synthesis, preparation of videos, index files and mix-and-separate sampling."""
