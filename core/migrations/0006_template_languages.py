from tortoise import migrations
from tortoise.migrations import operations as ops
from core.models.enums import TemplateKind
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class WidenColumn(ops.AlterField):
    """AlterField everywhere but SQLite. SQLite does not enforce VARCHAR lengths, and Tortoise
    alters a SQLite column by remaking the table, whose DROP cascades to the rows that refer
    to it (a template's attachment links would be lost)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_smtp_limits')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EmailTemplateTranslation',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('models.EmailTemplate', source_field='template_id', db_constraint=True, to_field='id', related_name='translations', on_delete=OnDelete.CASCADE)),
                ('language', fields.CharField(max_length=35)),
                ('subject', fields.TextField(unique=False)),
                ('body', fields.TextField(unique=False)),
            ],
            options={'table': 'email_template_translation', 'app': 'models', 'unique_together': (('template', 'language'),), 'pk_attr': 'id', 'table_description': 'The subject and body of a template in one more language.'},
            bases=['Model'],
        ),
        # INTERVIEW_CANCELLATION is 22 characters.
        WidenColumn(
            model_name='EmailTemplate',
            name='kind',
            field=fields.CharEnumField(description='INTERVIEW_INVITATION: INTERVIEW_INVITATION\nINTERVIEW_UPDATE: INTERVIEW_UPDATE\nINTERVIEW_CANCELLATION: INTERVIEW_CANCELLATION\nMESSAGE: MESSAGE\nREJECTION: REJECTION', enum_type=TemplateKind, max_length=22),
        ),
        ops.AddField(
            model_name='EmailTemplate',
            name='is_default',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='EmailTemplate',
            name='language',
            field=fields.CharField(default='en', db_default='en', max_length=35),
        ),
    ]
