"""`sobjects` (describeGlobal) and `sobjects/{Name}/describe` bodies, shaped as Salesforce sends them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .objects import NUMBER_TYPES, SOAP_TYPES, Field, SObjectType

WRITABLE = False  # the sandbox serves reads only; describe says so instead of promising writes


def object_urls(sobject: SObjectType, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{sobject.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def global_entry(sobject: SObjectType, version: str) -> dict[str, Any]:
    return {
        "activateable": False, "createable": WRITABLE, "custom": False, "customSetting": False,
        "deepCloneable": False, "deletable": WRITABLE, "deprecatedAndHidden": False, "feedEnabled": False,
        "hasSubtypes": False, "isInterface": False, "isSubtype": False, "keyPrefix": sobject.key_prefix,
        "label": sobject.label, "labelPlural": sobject.label_plural, "layoutable": True, "mergeable": False,
        "mruEnabled": True, "name": sobject.name, "queryable": sobject.queryable, "replicateable": True,
        "retrieveable": True, "searchable": True, "triggerable": True, "undeletable": WRITABLE,
        "updateable": WRITABLE, "urls": object_urls(sobject, version),
    }


def describe_global(objects: Iterable[SObjectType], version: str) -> dict[str, Any]:
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [global_entry(sobject, version) for sobject in sorted(objects, key=lambda o: o.name)]}


def describe_object(sobject: SObjectType, objects: Iterable[SObjectType], version: str,
                    world_picklist: Callable[[str], list[str]]) -> dict[str, Any]:
    others = list(objects)
    body = global_entry(sobject, version)
    body.update({
        "actionOverrides": [], "childRelationships": _child_relationships(sobject, others),
        "compactLayoutable": True, "defaultImplementation": None, "extendedBy": None, "extendsInterfaces": None,
        "fields": [_describe_field(field, world_picklist) for field in sobject.fields],
        "implementedBy": None, "implementsInterfaces": None, "listviewable": None, "lookupLayoutable": None,
        "namedLayoutInfos": [], "networkScopeFieldName": None,
        "recordTypeInfos": [{"active": True, "available": True, "defaultRecordTypeMapping": True,
                             "developerName": "Master", "master": True, "name": "Master",
                             "recordTypeId": "012000000000000AAA", "urls": {}}],
        "searchLayoutable": True, "sobjectDescribeOption": "FULL", "supportedScopes": [
            {"label": "All " + sobject.label_plural.lower(), "name": "everything"}],
    })
    return body


def _describe_field(field: Field, world_picklist: Callable[[str], list[str]]) -> dict[str, Any]:
    values = list(field.picklist)
    if field.standard_picklist_from_world:
        values = list(dict.fromkeys(world_picklist(field.standard_picklist_from_world) + values))
    is_number = field.type in NUMBER_TYPES
    return {
        "aggregatable": field.type not in ("boolean", "textarea"), "aiPredictionField": False,
        "autoNumber": field.name == "ContractNumber", "byteLength": field.length * 3,
        "calculated": False, "calculatedFormula": None, "cascadeDelete": False, "caseSensitive": False,
        "compoundFieldName": None, "controllerName": None, "createable": WRITABLE, "custom": field.custom,
        "defaultValue": False if field.type == "boolean" else None, "defaultValueFormula": None,
        "defaultedOnCreate": field.type == "boolean" or field.name in ("Id", "OwnerId", "CreatedDate"),
        "dependentPicklist": False, "deprecatedAndHidden": False,
        "digits": 9 if field.type == "int" else 0, "displayLocationInDecimal": False, "encrypted": False,
        "externalId": False, "extraTypeInfo": None, "filterable": True, "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False, "groupable": not is_number and field.type != "datetime",
        "highScaleNumber": False, "htmlFormatted": False, "idLookup": field.name == "Id",
        "inlineHelpText": None, "label": field.label, "length": field.length,
        "mask": None, "maskType": None, "name": field.name, "nameField": field.name == "Name",
        "namePointing": field.is_polymorphic, "nillable": field.nillable, "permissionable": field.nillable,
        "picklistValues": [{"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                           for value in values],
        "polymorphicForeignKey": field.is_polymorphic,
        "precision": 18 if field.type in ("currency", "double", "percent") else 0,
        "queryByDistance": False, "referenceTargetField": None,
        "referenceTo": list(field.reference_to), "relationshipName": field.relationship_name,
        "relationshipOrder": None, "restrictedDelete": False, "restrictedPicklist": False,
        "scale": 2 if field.type in ("currency", "double", "percent") else 0, "searchPrefilterable": False,
        "soapType": SOAP_TYPES.get(field.type, "xsd:string"), "sortable": field.type != "textarea",
        "type": field.type, "unique": False, "updateable": WRITABLE, "writeRequiresMasterRead": False,
    }


def _child_relationships(parent: SObjectType, objects: list[SObjectType]) -> list[dict[str, Any]]:
    children = []
    for child in objects:
        for field in child.fields:
            if field.type == "reference" and parent.name in field.reference_to:
                children.append({
                    "cascadeDelete": False, "childSObject": child.name, "deprecatedAndHidden": False,
                    "field": field.name, "junctionIdListNames": [], "junctionReferenceTo": [],
                    "relationshipName": _child_relationship_name(child, field), "restrictedDelete": False,
                })
    return children


def _child_relationship_name(child: SObjectType, field: Field) -> str | None:
    if field.name in ("CreatedById", "LastModifiedById"):
        return None
    if field.is_polymorphic:
        return child.label_plural.replace(" ", "")
    if field.custom:
        return field.name[:-3] + "s__r"
    plural = child.name + ("es" if child.name.endswith("s") else "s")
    return {"OpportunityHistory": "OpportunityHistories", "Opportunity": "Opportunities",
            "OpportunityLineItem": "OpportunityLineItems"}.get(child.name, plural)
