"""Fine-tuning on the datasets docmill wrote: TRL + PEFT LoRA, locally or as a SageMaker job.

- :mod:`data`: a dataset folder/S3 prefix -> TRL-shaped splits and test questions with context
- :mod:`model`: the base model (embedded SmolLM2 or a path)
- :mod:`train`: training with checkpoints/resume, evaluation before and after, card and plot
- :mod:`jobs`: job records per tenant; :mod:`service`: local jobs end to end
- :mod:`sagemaker`: training job request, cost estimate; :mod:`entry`: what the job runs
- :mod:`endpoint`: serving an adapter on a SageMaker endpoint (inference components)
"""

from docmill.finetune.data import TrainingData, load_training_data
from docmill.finetune.jobs import JobRecord, JobStore
from docmill.finetune.service import LocalFinetuner
from docmill.finetune.train import FinetuneParams

__all__ = ["FinetuneParams", "JobRecord", "JobStore", "LocalFinetuner", "TrainingData", "load_training_data"]
