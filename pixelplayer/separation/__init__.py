"""Separating videos: windows and overlap-add, regions, outputs and the page, behind one API."""
