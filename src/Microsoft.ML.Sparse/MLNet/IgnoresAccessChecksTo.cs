// ML.NET keeps its model save/load contract internal. This assembly compiles against publicized copies of these two
// assemblies (build/Publicizer) and asks the runtime to skip access checks into them. See docs/mlnet.md.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices;

/// <summary>
/// Recognised by the CoreCLR loader (by name, not by identity): the declaring assembly may access non-public types and
/// members of the named assembly. The runtime defines no public copy, so every user declares its own.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute : Attribute
{
    /// <summary>Creates the attribute for the assembly with the given simple name.</summary>
    public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

    /// <summary>Simple name of the assembly whose access checks are skipped.</summary>
    public string AssemblyName { get; }
}
