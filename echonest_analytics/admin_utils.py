"""Django admin building blocks: organizer scoping and care for large, append-only tables."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.utils.functional import cached_property


def organizer_lookup(*, model: type[Model], user) -> dict[str, Any] | None:
    """The filter limiting `model`'s rows to the organizers `user` is a member of.

    None when nothing needs limiting: a superuser, or a model that belongs to no
    organizer. The same rule as the staff API (`streams.selectors.streams_visible_to`).
    """
    if user.is_superuser:
        return None
    if model._meta.label == "streams.Organizer":
        return {"members": user}
    # A model belongs to an organizer directly, or through its stream (a provider, a
    # radio station).
    for path in ("organizer", "stream__organizer"):
        head = path.split("__", 1)[0]
        if any(field.name == head and field.is_relation for field in model._meta.get_fields()):
            return {f"{path}__members": user}
    return None


class OrganizerScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices name only the user's organizers and their streams."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        limit = organizer_lookup(model=field.related_model, user=request.user)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=limit)


class OrganizerScopedAdmin(admin.options.BaseModelAdmin):
    """Staff see and pick only what belongs to organizers they are members of (SPEC §10).

    `organizer_path` leads from the model to its Organizer ("stream__organizer"); ""
    means the model is the Organizer. A model linked to its organizer some other way
    overrides `organizer_scope`. Lists, change/delete/history views, autocomplete and
    exports all start from `get_queryset`, so scoping it scopes them all; foreign-key
    choices in forms and list filters are limited the same way.
    """

    organizer_path: str = "stream__organizer"

    def organizer_scope(self, request, queryset: QuerySet) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        members = f"{self.organizer_path}__members" if self.organizer_path else "members"
        return queryset.filter(**{members: request.user})

    def get_queryset(self, request) -> QuerySet:
        return self.organizer_scope(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        limit = organizer_lookup(model=db_field.related_model, user=request.user)
        if limit is not None and "queryset" not in kwargs:
            kwargs["queryset"] = db_field.related_model._default_manager.filter(**limit)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        return [
            (name, OrganizerScopedRelatedFilter)
            if isinstance(name, str) and self._names_related_object(name)
            else name
            for name in super().get_list_filter(request)
        ]

    def _names_related_object(self, path: str) -> bool:
        model = self.model
        field = None
        for part in path.split("__"):
            field = model._meta.get_field(part)
            if not field.is_relation:
                return False
            model = field.related_model
        return field is not None and field.is_relation


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows, so a changelist over millions of events never runs COUNT(*)
    over the whole table; pages past the cap are reached by narrowing the filters."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.CAP].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by ingestion and jobs: staff may look, not touch."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RawEventAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
