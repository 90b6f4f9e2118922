"""Fine-tuning: labelled URL sets → a merged sequence classifier, calibration and a report."""
