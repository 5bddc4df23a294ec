from __future__ import annotations

import uuid

from django.db import models

from powercrud_async.models import AbstractAsyncTaskRecord


class Project(models.Model):
    name = models.CharField(max_length=100)
    counter = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class ProjectProxy(Project):
    """The same rows as ``Project`` under another label: must share its locks."""

    class Meta:
        proxy = True


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=100, blank=True)


class Tag(models.Model):
    slug = models.CharField(max_length=50, primary_key=True)


class Parent(models.Model):
    name = models.CharField(max_length=100)

    def save(self, *args, skip_async: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        from powercrud_async.async_context import (
            register_descendant_conflicts,
            skip_nested_async,
            update_progress,
        )

        super().save(*args, **kwargs)
        children = list(self.children.values_list("pk", flat=True)) if self.pk else []
        if skip_async or skip_nested_async():
            register_descendant_conflicts("testapp.Child", children)
            for index, child in enumerate(self.children.all(), start=1):
                child.touched += 1
                child.save()
                update_progress(
                    f"{self.name}: child {index}/{len(children)}",
                    current=index,
                    total=len(children),
                )
        else:
            from powercrud_async.async_manager import AsyncManager

            AsyncManager.resolve_manager().launch_async_task(
                "tests.testapp.tasks.touch_children",
                self.pk,
                conflict_ids={"testapp.Child": children},
            )


class Child(models.Model):
    parent = models.ForeignKey(Parent, related_name="children", on_delete=models.CASCADE)
    touched = models.IntegerField(default=0)


class AsyncTaskRecord(AbstractAsyncTaskRecord):
    pass


class CustomRecord(models.Model):
    """A bespoke dashboard model with its own column names, for field_map tests."""

    key = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)
    who = models.CharField(max_length=255, blank=True)
    output = models.JSONField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)


class MinimalRecord(models.Model):
    """Only the required column."""

    task_name = models.CharField(max_length=255, unique=True)
